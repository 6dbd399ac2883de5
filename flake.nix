{
  description = "sprout: appliance disk images that grow themselves on first boot, in the initrd";

  # Never built where sprout is developed (nixpkgs cannot be fetched
  # there): nix/check.sh parses this file and evaluates its outputs against
  # stand-ins. See README.md ("Nix").
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
      # nixpkgs' form for a package built from a commit without a release:
      # 0-unstable-YYYY-MM-DD, the date of the commit (the flake's source).
      date = self.lastModifiedDate or "19700101000000";
      version = "0-unstable-${builtins.substring 0 4 date}-${builtins.substring 4 2 date}-${builtins.substring 6 2 date}";
    in
    {
      packages.${system} = {
        sprout = pkgs.callPackage ./nix/package.nix { inherit version; };
        default = self.packages.${system}.sprout;
      };

      # boot.initrd.sprout.{enable,package,compat,extraArgs}, a drop-in for
      # boot.initrd.systemd.repart; the package is nix/package.nix built
      # with the system's own nixpkgs, at this flake's version.
      nixosModules.default =
        { lib, pkgs, ... }:
        {
          imports = [ ./initrd/nixos/sprout.nix ];
          boot.initrd.sprout.package = lib.mkDefault (pkgs.callPackage ./nix/package.nix { inherit version; });
        };

      # The seed article in a NixOS VM: image with ESP + store, grown by
      # 10 GiB; first boot creates /home and /var (2:1), second is a no-op.
      # nix build .#checks.x86_64-linux.seed-article
      checks.${system}.seed-article = pkgs.testers.runNixOSTest (
        import ./nix/vm-test.nix { sproutModule = self.nixosModules.default; }
      );
    };
}
