# Evaluates sprout.nix against small stand-ins for nixpkgs' lib and pkgs
# (nixpkgs cannot be fetched where sprout is developed) and returns what
# the module defines: the unit, the initrd's programs, libraries and
# modules, the rendered definitions, the failed assertions. check.sh
# compares them with systemd-units/sprout.service, with what `sprout
# --initrd-needs` says of the same definitions, and with what must fail.
#
# The stand-ins follow nixpkgs' documented behaviour where the module
# depends on it: formats.ini { listsAsDuplicateKeys = true; } renders a
# list as one Key=value line per element and booleans as true/false
# (lib.generators.toINI); they are not nixpkgs.
{
  # The partitions, as JSON (systemd.repart.partitions).
  partitions ? ''{"home":{"Type":"home","Label":"home","Format":"ext4","Weight":2000},"var":{"Type":"var","Label":"var","Format":"ext4","Weight":1000}}'',
  device ? null,
  empty ? "refuse",
  discard ? true,
  systemdVersion ? "257.9",
  compat ? "default", # "default", "null" or a number
  repartEnable ? false,
  systemdInitrd ? true,
}:
let
  lib = rec {
    mkEnableOption = description: { type = "bool"; inherit description; };
    mkOption = o: o;
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    types = {
      package = "package";
      str = "str";
      int = "int";
      nullOr = t: "nullOr ${t}";
      listOf = t: "listOf ${t}";
    };
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    optionalAttrs = cond: attrs: if cond then attrs else { };
    optionalString = cond: s: if cond then s else "";
    toLower = builtins.replaceStrings
      [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ]
      [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
    escapeShellArgs = args: builtins.concatStringsSep " " (map (a: "'${a}'") args);
    mapAttrs = builtins.mapAttrs;
    mapAttrsToList = f: attrs: map (n: f n attrs.${n}) (builtins.attrNames attrs);
    last = l: builtins.elemAt l (builtins.length l - 1);
    unique = builtins.foldl' (acc: x: if builtins.elem x acc then acc else acc ++ [ x ]) [ ];
    toInt = s: builtins.fromJSON s;
    warn = msg: v: builtins.trace "warning: ${msg}" v;
    concatStringsSep = builtins.concatStringsSep;
    concatStrings = builtins.concatStringsSep "";
  };

  # lib.generators.toINI with listsAsDuplicateKeys: sections and keys in
  # name order, a list as repeated keys, booleans as true/false.
  iniValue = v: if v == true then "true" else if v == false then "false" else toString v;
  toINI = value: lib.concatStrings (map (section:
    "[${section}]\n" + lib.concatStrings (map (key:
      let v = value.${section}.${key}; in
      lib.concatStrings (map (x: "${key}=${iniValue x}\n") (if builtins.isList v then v else [ v ])))
      (builtins.attrNames value.${section})))
    (builtins.attrNames value));

  pkg = name: { outPath = "/nix/store/${name}"; inherit name; };
  pkgs = {
    formats.ini = args: {
      inherit args;
      generate = name: value: { outPath = "/nix/store/ini-${name}"; inherit name args; text = toINI value; };
    };
    runCommand = name: env: script: { outPath = "/nix/store/${name}"; inherit name script; } // (env.passthru or { });
    stdenv = {
      buildPlatform.canExecute = _: true;
      hostPlatform = { };
    };
    e2fsprogs = pkg "e2fsprogs";
    dosfstools = pkg "dosfstools";
    xfsprogs = pkg "xfsprogs";
    btrfs-progs = pkg "btrfs-progs";
    cryptsetup = pkg "cryptsetup";
    tpm2-tss = pkg "tpm2-tss";
  };
  utils.escapeSystemdPath = p: builtins.replaceStrings [ "/" ] [ "-" ] (builtins.substring 1 (-1) p);
  config = {
    boot.initrd.sprout = {
      enable = true;
      package = "/nix/store/sprout";
      extraArgs = [ ];
      compat =
        if compat == "default" then module.options.boot.initrd.sprout.compat.default
        else if compat == "null" then null
        else lib.toInt compat;
    };
    boot.initrd.systemd = {
      enable = systemdInitrd;
      package = pkg "systemd";
      repart = { enable = repartEnable; inherit device empty discard; };
    };
    systemd.package = { version = systemdVersion; };
    systemd.repart.partitions = builtins.fromJSON partitions;
  };
  module = import ./sprout.nix { inherit config lib pkgs utils; };
  c = module.config.content;
  unit = c.boot.initrd.systemd.services.sprout;
  definitions = c.boot.initrd.systemd.contents."/etc/repart.d".source;
  name = p: if builtins.isAttrs p then p.name else toString p;
in
{
  enabledBy = module.config.condition;
  failedAssertions = map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions);
  warnings = c.warnings;
  inherit (unit) description wantedBy unitConfig serviceConfig;
  contents = builtins.attrNames c.boot.initrd.systemd.contents;
  definitionsScript = definitions.script;
  # The files as the module rendered them, with the formats.ini arguments.
  rendered = builtins.mapAttrs (_: f: f.text) definitions.files;
  iniArgs = map (f: f.args) (builtins.attrValues definitions.files);
  availableKernelModules = c.boot.initrd.availableKernelModules;
  initrdBin = map name c.boot.initrd.systemd.initrdBin;
  storePaths = map toString c.boot.initrd.systemd.storePaths;
  compat = config.boot.initrd.sprout.compat;
}
