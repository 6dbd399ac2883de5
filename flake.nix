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
    in
    {
      packages.${system} = {
        sprout = pkgs.callPackage ./nix/package.nix { };
        default = self.packages.${system}.sprout;
      };

      # boot.initrd.sprout.{enable,package,device,extraArgs}; the package
      # defaults to nix/package.nix built with the system's nixpkgs.
      nixosModules.default = ./initrd/nixos/sprout.nix;

      # The seed article in a NixOS VM: image with ESP + store, grown by
      # 10 GiB; first boot creates /home and /var (2:1), second is a no-op.
      # nix build .#checks.x86_64-linux.seed-article
      checks.${system}.seed-article = pkgs.testers.runNixOSTest (
        import ./nix/vm-test.nix { sproutModule = self.nixosModules.default; }
      );
    };
}
