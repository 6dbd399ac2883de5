# Evaluates sprout.nix against small stand-ins for nixpkgs' lib and pkgs
# (nixpkgs cannot be fetched where sprout is developed) and returns the
# initrd unit and files it defines. check.sh compares them with
# systemd-units/sprout.service.
{ device ? null }:
let
  lib = {
    mkEnableOption = description: { type = "bool"; inherit description; };
    mkOption = o: o;
    types = {
      package = "package";
      str = "str";
      nullOr = t: "nullOr ${t}";
      listOf = t: "listOf ${t}";
    };
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    optional = cond: x: if cond then [ x ] else [ ];
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
  };
  utils.escapeSystemdPath = p: builtins.replaceStrings [ "/" ] [ "-" ] (builtins.substring 1 (-1) p);
  config = {
    boot.initrd.sprout = { enable = true; package = "/nix/store/sprout"; inherit device; extraArgs = [ ]; };
    boot.initrd.systemd = { enable = true; repart.enable = false; package = "/nix/store/systemd"; };
    systemd.repart.partitions = {
      home = { Type = "home"; Label = "home"; Format = "ext4"; Weight = 2000; };
      var = { Type = "var"; Label = "var"; Format = "ext4"; Weight = 1000; };
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
}
