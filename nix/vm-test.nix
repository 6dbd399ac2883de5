# NixOS VM test: the seed article ("Self-growing NixOS appliance images
# with systemd-repart") with sprout in place of systemd-repart in the
# initrd. The image has an ESP (systemd-boot + UKI) and a squashfs
# nix-store; the root is a tmpfs. The test boots a copy grown by 10 GiB:
# the first boot creates /home and /var (ext4, 2:1) before they are
# mounted; the second finds nothing to do and writes nothing.
#
#   nix build .#checks.x86_64-linux.seed-article
#
# Never run where sprout is developed (no nixpkgs there): nix/check.sh
# only parses it and evaluates the machine's own settings.
{ sproutModule }:
{ lib, ... }:
{
  name = "sprout-seed-article";

  nodes.machine =
    {
      config,
      lib,
      pkgs,
      modulesPath,
      ...
    }:
    {
      imports = [
        (modulesPath + "/profiles/image-based-appliance.nix")
        (modulesPath + "/image/repart.nix")
        sproutModule
      ];

      # Boot the image itself (systemd-boot from its ESP), not the test
      # framework's kernel and disk.
      virtualisation.directBoot.enable = false;
      virtualisation.mountHostNixStore = false;
      virtualisation.useEFIBoot = true;
      boot.loader.grub.enable = false;

      # filesystems.nix
      virtualisation.fileSystems = lib.mkForce {
        "/" = {
          fsType = "tmpfs";
          options = [ "size=100m" ];
        };
        "/boot" = {
          device = "/dev/disk/by-partlabel/boot";
          fsType = "vfat";
        };
        "/nix/store" = {
          device = "/dev/disk/by-partlabel/nix-store";
          fsType = "squashfs";
        };
        "/home" = {
          device = "/dev/disk/by-partlabel/home";
          fsType = "ext4";
        };
        "/var" = {
          device = "/dev/disk/by-partlabel/var";
          fsType = "ext4";
        };
      };
      boot.initrd.availableKernelModules = [ "squashfs" ];

      # image.nix
      image.repart = {
        name = "image";
        partitions = {
          esp = {
            contents =
              let
                efiArch = pkgs.stdenv.hostPlatform.efiArch;
              in
              {
                "/EFI/BOOT/BOOT${lib.toUpper efiArch}.EFI".source =
                  "${pkgs.systemd}/lib/systemd/boot/efi/systemd-boot${efiArch}.efi";
                "/EFI/Linux/${config.system.boot.loader.ukiFile}".source =
                  "${config.system.build.uki}/${config.system.boot.loader.ukiFile}";
              };
            repartConfig = {
              Format = "vfat";
              Label = "boot";
              SizeMinBytes = "200M";
              Type = "esp";
            };
          };
          nix-store = {
            storePaths = [ config.system.build.toplevel ];
            nixStorePrefix = "/";
            repartConfig = {
              Format = "squashfs";
              Label = "nix-store";
              Minimize = "guess";
              ReadOnly = "yes";
              Type = "linux-generic";
            };
          };
        };
      };

      # inflate.nix, with sprout. No device: sprout finds the disk from
      # the LoaderDevicePartUUID EFI variable that systemd-boot sets (the
      # article names /dev/sda; the test's disk is /dev/vda).
      boot.initrd.systemd.enable = true;
      boot.initrd.sprout.enable = true;
      systemd.repart.partitions = {
        home = {
          Format = "ext4";
          Label = "home";
          Type = "home";
          Weight = 2000;
        };
        var = {
          Format = "ext4";
          Label = "var";
          Type = "var";
          Weight = 1000;
        };
      };
    };

  testScript =
    { nodes, ... }:
    ''
      import os
      import subprocess
      import tempfile

      # `dd` onto a disk 10 GiB bigger: a qcow2 overlay on the raw image,
      # with a larger virtual size, so the store's image stays untouched.
      image = "${nodes.machine.system.build.image}/${nodes.machine.image.repart.imageFile}"
      disk = tempfile.NamedTemporaryFile(suffix=".qcow2")
      subprocess.run(
          ["${nodes.machine.virtualisation.qemu.package}/bin/qemu-img", "create", "-f", "qcow2",
           "-b", image, "-F", "raw", disk.name, str(os.path.getsize(image) + 10 * 1024**3)],
          check=True,
      )
      os.environ["NIX_DISK_IMAGE"] = disk.name

      def gpt_areas():
          # The protective MBR, both headers and both entry arrays.
          return machine.succeed(
              "d=/dev/$(lsblk -no PKNAME /dev/disk/by-partlabel/boot); "
              "mib=$(( $(blockdev --getsize64 $d) / 1048576 )); "
              "{ dd if=$d bs=1M count=1 status=none; dd if=$d bs=1M skip=$((mib - 1)) status=none; } | sha256sum"
          )

      with subtest("first boot: sprout creates /home and /var, 2:1, before they are mounted"):
          machine.wait_for_unit("multi-user.target")
          machine.succeed("findmnt -n -o SOURCE /home | grep -q .")
          machine.succeed("findmnt -n -o FSTYPE /var | grep -qx ext4")
          home = int(machine.succeed("blockdev --getsize64 /dev/disk/by-partlabel/home"))
          var = int(machine.succeed("blockdev --getsize64 /dev/disk/by-partlabel/var"))
          assert 1.99 < home / var < 2.01, f"home:var = {home}:{var}, want 2:1"
          assert home + var > 9 * 1024**3, f"home + var = {home + var} bytes, want most of the 10 GiB"
          machine.succeed("journalctl -b --no-pager | grep -q 'sprout.*All done'")
          before = gpt_areas()

      with subtest("second boot: nothing to do, no byte of the GPT areas changed"):
          machine.shutdown()
          machine.start()
          machine.wait_for_unit("multi-user.target")
          machine.succeed("journalctl -b --no-pager | grep -q 'sprout.*No changes'")
          after = gpt_areas()
          assert before == after, f"GPT areas changed: {before} -> {after}"
    '';
}
