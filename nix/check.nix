# Evaluates nix/package.nix, flake.nix and nix/vm-test.nix against small
# stand-ins for nixpkgs (which cannot be fetched where sprout is developed)
# and returns what they define, for nix/check.sh to compare. Nothing here
# builds anything.
let
  system = "x86_64-linux";
  lib = {
    licenses.asl20 = "asl20";
    platforms.linux = [ system ];
    toUpper = s: s; # only used on "x64"
    mkForce = content: { _type = "override"; inherit content; };
    mkDefault = content: { _type = "override"; priority = 1000; inherit content; };
    mkEnableOption = description: { type = "bool"; inherit description; };
    mkOption = o: o;
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    fileset = {
      toSource = { root, fileset }: { root = toString root; inherit fileset; };
      difference = a: b: { difference = [ (toString a) b ]; };
      unions = list: list;
      maybeMissing = p: toString p;
    };
  };
  # buildGoModule returns its arguments: what the derivation would get.
  buildGoModule = args: args // { builder = "buildGoModule"; };
  pkgs = {
    inherit lib buildGoModule;
    installShellFiles = "installShellFiles";
    callPackage = f: extra: import f ({ inherit lib buildGoModule; installShellFiles = "installShellFiles"; } // extra);
    testers.runNixOSTest = test: { runNixOSTest = test; };
    systemd = "/nix/store/systemd";
    stdenv.hostPlatform.efiArch = "x64";
  };
  nixpkgs = { legacyPackages.${system} = pkgs; };

  flake = import ../flake.nix;
  # A flake's self has the date of its source (here: a made-up one).
  outputs = flake.outputs { self = outputs // { lastModifiedDate = "20261207093012"; }; inherit nixpkgs; };
  package = outputs.packages.${system}.default;

  # The flake's module: sprout.nix, with the package at the flake's version.
  flakeModule = outputs.nixosModules.default { inherit lib pkgs; };
  # The NixOS module's package default must name a file that exists.
  module = import (builtins.head flakeModule.imports) {
    inherit lib pkgs;
    config.boot.initrd.sprout.enable = false;
    utils = { };
  };
  packageWith = args: import ./package.nix ({ inherit lib buildGoModule; installShellFiles = "installShellFiles"; } // args);

  test = outputs.checks.${system}.seed-article.runNixOSTest { inherit lib; };
  machineConfig = {
    system.boot.loader.ukiFile = "nixos.efi";
    system.build = { uki = "/nix/store/uki"; toplevel = "/nix/store/toplevel"; };
  };
  machine = test.nodes.machine { config = machineConfig; inherit lib pkgs; modulesPath = "/modules"; };
  script = test.testScript {
    nodes.machine = {
      system.build.image = "/nix/store/image";
      image.repart.imageFile = "image.raw";
      virtualisation.qemu.package = "/nix/store/qemu";
    };
  };
in
{
  package = {
    inherit (package) pname version vendorHash subPackages ldflags builder;
    cgo = package.env.CGO_ENABLED;
    src = package.src.root;
    manPages = builtins.match ".*go tool go-md2man.*installManPage.*" package.postInstall != null;
  };
  flake = {
    packages = builtins.attrNames outputs.packages.${system};
    sproutIsDefault = outputs.packages.${system}.sprout.pname == package.pname;
    nixosModule = map (i: baseNameOf (toString i)) flakeModule.imports;
    modulePackageVersion = flakeModule.boot.initrd.sprout.package.content.version;
    checks = builtins.attrNames outputs.checks.${system};
  };
  moduleDefaultPackage = module.options.boot.initrd.sprout.package.default.pname;
  packageDefaultVersion = (packageWith { }).version;
  packageRefusesOtherVersions = !(builtins.tryEval (packageWith { version = "0-unstable"; }).version).success;
  vmTest = {
    inherit (test) name;
    imports = map (i: if builtins.isFunction i then "nixosModules.default" else baseNameOf (toString i)) machine.imports;
    sprout = machine.boot.initrd.sprout.enable && machine.boot.initrd.systemd.enable;
    partitions = machine.systemd.repart.partitions;
    fileSystems = builtins.attrNames machine.virtualisation.fileSystems.content;
    imagePartitions = builtins.attrNames machine.image.repart.partitions;
    grows10G = builtins.match ".*10 \\* 1024\\*\\*3.*" script != null;
    checksNoChanges = builtins.match ".*No changes.*before == after.*" script != null;
    inherit script;
  };
}
