# NixOS module: sprout in the systemd initrd, as a drop-in for
# boot.initrd.systemd.repart. It reads the same systemd.repart.partitions,
# so the seed article's inflate.nix becomes:
#
#   imports = [ ./sprout.nix ];
#   boot.initrd.sprout.enable = true;
#   boot.initrd.sprout.package = pkgs.callPackage ./sprout-package.nix { };
#   # boot.initrd.sprout.device = "/dev/sda";  # optional: sprout finds the disk
#   systemd.repart.partitions = { home = { … }; var = { … }; };
#
# The unit mirrors systemd-units/sprout.service; see docs/boot.md for why it
# is ordered this way. This module has only been syntax-checked (no Nix
# builds are possible where sprout is developed).
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
in
{
  options.boot.initrd.sprout = {
    enable = lib.mkEnableOption "sprout, which grows the boot disk's partitions from systemd.repart.partitions in the initrd";

    package = lib.mkOption {
      type = lib.types.package;
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

    boot.initrd.availableKernelModules = [ "loop" "ext4" ];

    boot.initrd.systemd = {
      # mke2fs and friends, which sprout runs to format new partitions.
      initrdBin = [ pkgs.e2fsprogs pkgs.dosfstools ];
      storePaths = [ "${cfg.package}/bin/sprout" ];
      contents."/etc/repart.d".source = definitions;

      services.sprout = {
        description = "Grow the boot disk's partitions (sprout)";
        wantedBy = [ "initrd-root-fs.target" ];
        wants = [ "modprobe@loop.service" ] ++ lib.optional (cfg.device != null) deviceUnit;
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
          ConditionDirectoryNotEmpty = "/etc/repart.d";
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
