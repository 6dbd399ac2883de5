# Evaluates sprout.nix against small stand-ins for nixpkgs' lib and pkgs
# (nixpkgs cannot be fetched where sprout is developed) and returns the
# initrd unit and files it defines. check.sh compares them with
# systemd-units/sprout.service.
{ device ? null, encrypt ? null }:
let
  lib = {
    mkEnableOption = description: { type = "bool"; inherit description; };
    mkOption = o: o;
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    types = {
      package = "package";
      str = "str";
      nullOr = t: "nullOr ${t}";
      listOf = t: "listOf ${t}";
    };
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    toLower = builtins.replaceStrings
      [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ]
      [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
    optionalAttrs = cond: attrs: if cond then attrs else { };
    escapeShellArgs = args: builtins.concatStringsSep " " (map (a: "'${a}'") args);
    makeBinPath = paths: builtins.concatStringsSep ":" (map (p: "${p}/bin") paths);
    mapAttrsToList = f: attrs: map (n: f n attrs.${n}) (builtins.attrNames attrs);
  };
  pkgs = {
    formats.ini = { }: { generate = name: value: { inherit name value; }; };
    linkFarm = name: entries: { inherit name entries; };
    writeShellScript = name: text: { inherit name text; };
    coreutils = "/nix/store/coreutils";
    e2fsprogs = "/nix/store/e2fsprogs";
    dosfstools = "/nix/store/dosfstools";
    cryptsetup = "/nix/store/cryptsetup";
    tpm2-tss = "/nix/store/tpm2-tss";
  };
  utils.escapeSystemdPath = p: builtins.replaceStrings [ "/" ] [ "-" ] (builtins.substring 1 (-1) p);
  config = {
    boot.initrd.sprout = { enable = true; package = "/nix/store/sprout"; inherit device; extraArgs = [ ]; };
    boot.initrd.systemd = { enable = true; repart.enable = false; package = "/nix/store/systemd"; };
    systemd.repart.partitions = {
      home = { Type = "home"; Label = "home"; Format = "ext4"; Weight = 2000; };
      var = { Type = "var"; Label = "var"; Format = "ext4"; Weight = 1000; }
        // (if encrypt == null then { } else { Encrypt = encrypt; });
    };
  };
  module = import ./sprout.nix { inherit config lib pkgs utils; };
  c = module.config.content;
  unit = c.boot.initrd.systemd.services.sprout;
in
{
  enabledBy = module.config.condition;
  inherit (unit) before after wants conflicts wantedBy unitConfig serviceConfig;
  contents = builtins.attrNames c.boot.initrd.systemd.contents;
  definitions = map (e: e.name) c.boot.initrd.systemd.contents."/etc/repart.d".source.entries;
  inherit (c.boot.initrd) availableKernelModules;
  inherit (c.boot.initrd.systemd) initrdBin storePaths;
}
