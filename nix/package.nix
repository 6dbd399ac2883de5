# sprout for nixpkgs: the static binary (CGO off) and its man pages,
# rendered from docs/man with go-md2man, which go.mod pins as a Go tool
# dependency (so the vendored modules already contain it).
#
#   pkgs.callPackage ./nix/package.nix { }
#
# vendorHash is the NAR hash of `go mod vendor`'s output; nix/vendor-hash.sh
# computes it and `make test-nixos` checks it is current. go.mod asks for
# Go 1.26: buildGo126Module where nixpkgs has it, else buildGoModule (whose
# Go must then be 1.26 or later).
{
  lib,
  buildGoModule,
  buildGo126Module ? buildGoModule,
  installShellFiles,
  # nixpkgs' form for an unreleased commit: 0-unstable-YYYY-MM-DD, the
  # commit's date. The flake passes its source's date; other callers
  # should pass theirs (this default says the date is unknown).
  version ? "0-unstable-1970-01-01",
}:

assert builtins.match "0-unstable-[0-9]{4}-[0-9]{2}-[0-9]{2}" version != null;


buildGo126Module {
  pname = "sprout";
  inherit version;

  # The whole tree: `go mod vendor` vendors what every package of the
  # module imports (tests/ and bench/ included), and the hash covers that.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.difference ../. (
      lib.fileset.unions [
        (lib.fileset.maybeMissing ../build)
        (lib.fileset.maybeMissing ../bin)
        (lib.fileset.maybeMissing ../result)
      ]
    );
  };

  vendorHash = "sha256-pFB6SEi8VFTZD43CDl1BGYseL49jWA3nZBNvLGIYIeo=";

  subPackages = [ "cmd/sprout" ];
  env.CGO_ENABLED = "0";
  ldflags = [
    "-s"
    "-w"
    "-X github.com/sprout-initrd/sprout/pkg/cli.Version=${version}"
  ];

  nativeBuildInputs = [ installShellFiles ];

  # The check phase runs cmd/sprout's tests, which include the one that
  # `sprout --help` and docs/man/sprout.8.md list the same flags.
  postInstall = ''
    for page in docs/man/*.8.md; do
      name=$(basename "$page" .md)
      go tool go-md2man -in "$page" -out "$name"
      installManPage "$name"
    done
  '';

  meta = {
    description = "Grow appliance disk images on first boot, in the initrd, from repart.d definitions";
    homepage = "https://github.com/sprout-initrd/sprout";
    license = lib.licenses.asl20;
    mainProgram = "sprout";
    platforms = lib.platforms.linux;
  };
}
