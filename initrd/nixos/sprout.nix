# NixOS module: sprout in the systemd initrd, as a drop-in for
# boot.initrd.systemd.repart. It reads the same systemd.repart.partitions,
# so the seed article's inflate.nix becomes:
#
#   imports = [ sprout.nixosModules.default ];   # the flake's; or this file
#   boot.initrd.systemd.enable = true;
#   boot.initrd.sprout.enable = true;
#   # boot.initrd.sprout.device = "/dev/sda";  # optional: sprout finds the disk
#   systemd.repart.partitions = { home = { … }; var = { … }; };
#
# The package defaults to nix/package.nix built with the system's nixpkgs.
# The unit mirrors systemd-units/sprout.service; see docs/boot.md for why it
# is ordered this way. This module has been parsed and evaluated against
# stand-ins only (initrd/nixos/check.sh, nix/check.sh): no Nix builds are
# possible where sprout is developed.
{ config, lib, pkgs, utils, ... }:

let
  cfg = config.boot.initrd.sprout;
  ini = pkgs.formats.ini { };

  # One repart.d file per attribute, in attribute-name order, as the NixOS
  # repart module writes them.
  definitions = pkgs.linkFarm "sprout-repart.d" (lib.mapAttrsToList
    (name: partition: {
      name = "${name}.conf";
      path = ini.generate "${name}.conf" { Partition = partition; };
    })
    config.systemd.repart.partitions);

  deviceUnit = "${utils.escapeSystemdPath cfg.device}.device";

  # What the definitions' Encrypt= ask for: encryption support goes into
  # the initrd only then (the false booleans are off, as in repart.d(5);
  # key-file+tpm2 needs what tpm2 needs).
  encryptValues = map (p: lib.toLower (toString (p.Encrypt or "off")))
    (builtins.attrValues config.systemd.repart.partitions);
  encrypted = builtins.any (v: !(builtins.elem v [ "off" "no" "false" "0" "" "n" "f" ])) encryptValues;
  tpm2 = builtins.any (v: builtins.match ".*tpm2.*" v != null) encryptValues;
in
{
  options.boot.initrd.sprout = {
    enable = lib.mkEnableOption "sprout, which grows the boot disk's partitions from systemd.repart.partitions in the initrd";

    package = lib.mkOption {
      type = lib.types.package;
      default = pkgs.callPackage ../../nix/package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./nix/package.nix { }";
      description = "The sprout package (a static Go binary in bin/sprout).";
    };

    device = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "/dev/disk/by-id/nvme-Samsung_SSD_980_S64DNX0R123456";
      description = ''
        The disk to grow. When null, sprout finds it from sprout.device= on
        the kernel command line, systemd-boot's LoaderDevicePartUUID, root=
        or mount.usr=, and refuses to guess.
      '';
    };

    extraArgs = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [ "--seed=0123456789abcdef0123456789abcdef" ];
      description = "More systemd-repart style arguments for sprout.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = config.boot.initrd.systemd.enable;
        message = "boot.initrd.sprout needs a systemd initrd (boot.initrd.systemd.enable = true).";
      }
      {
        assertion = !config.boot.initrd.systemd.repart.enable;
        message = "Enable boot.initrd.sprout or boot.initrd.systemd.repart, not both.";
      }
    ];

    boot.initrd.availableKernelModules = [ "loop" "ext4" ]
      # cryptsetup's LUKS2 defaults (aes-xts-plain64, sha256), checked
      # through AF_ALG.
      ++ lib.optionals encrypted [ "dm_mod" "dm_crypt" "xts" "aesni_intel" "algif_skcipher" "algif_hash" ]
      ++ lib.optionals tpm2 [ "tpm_tis" "tpm_crb" ];

    boot.initrd.systemd = {
      # mke2fs and friends, which sprout runs to format new partitions;
      # cryptsetup, which makes and opens LUKS2 volumes (Encrypt=).
      initrdBin = [ pkgs.e2fsprogs pkgs.dosfstools ] ++ lib.optional encrypted pkgs.cryptsetup;
      # For Encrypt=tpm2: systemd-cryptenroll, and the tpm2-tss libraries
      # it loads at run time (not seen by the initrd's closure scan).
      storePaths = [ "${cfg.package}/bin/sprout" ] ++ lib.optionals tpm2 [
        "${config.boot.initrd.systemd.package}/bin/systemd-cryptenroll"
        "${pkgs.tpm2-tss}/lib/libtss2-esys.so.0"
        "${pkgs.tpm2-tss}/lib/libtss2-mu.so.0"
        "${pkgs.tpm2-tss}/lib/libtss2-rc.so.0"
        "${pkgs.tpm2-tss}/lib/libtss2-tcti-device.so.0"
      ];
      contents."/etc/repart.d".source = definitions;

      services.sprout = {
        description = "Grow the boot disk's partitions (sprout)";
        wantedBy = [ "initrd-root-fs.target" ];
        wants = [ "modprobe@loop.service" "local-fs-pre.target" ] ++ lib.optional (cfg.device != null) deviceUnit;
        after = [ "modprobe@loop.service" "systemd-udevd.service" "systemd-udev-trigger.service" ]
          ++ lib.optional (cfg.device != null) deviceUnit;
        before = [
          "systemd-fsck-root.service" "systemd-fsck-usr.service" "sysroot.mount" "sysusr-usr.mount"
          "initrd-root-fs.target" "initrd-usr-fs.target" "initrd-fs.target" "local-fs-pre.target"
          "shutdown.target" "initrd-switch-root.target"
        ];
        conflicts = [ "shutdown.target" "initrd-switch-root.target" ];
        unitConfig = {
          DefaultDependencies = false;
          ConditionVirtualization = "!container";
          ConditionPathExists = "/etc/initrd-release";
          ConditionDirectoryNotEmpty = "/etc/repart.d";
          # A disk sprout cannot find or repair ends the boot with its
          # message instead of a root device wait without end (docs/boot.md).
          OnFailure = "emergency.target";
          OnFailureJobMode = "replace-irreversibly";
        };
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = lib.escapeShellArgs ([ "${cfg.package}/bin/sprout" "--dry-run=no" ]
            ++ cfg.extraArgs
            # Without a device sprout finds the disk and waits for it itself
            # (docs/boot.md, "Waiting for the disk").
            ++ (if cfg.device != null then [ cfg.device ] else [ "--wait-for-disk=90s" ]));
          SuccessExitStatus = "77";
          Environment = "TMPDIR=/run";
          StandardOutput = "journal+console";
          StandardError = "journal+console";
        };
      };
    };
  };
}
