#!/bin/bash
# Builds a small dracut *systemd* initrd with the sprout module from this
# checkout, for a kernel that is not installed on the host (the QEMU tier and
# `make demo` use Debian's kernel unpacked under build/). The host's dracut
# is not changed: its base directory is copied and the module added there.
#
# usage: build-dracut-initrd.sh --kernel-root DIR --kver KVER --sprout BIN
#            --definitions DIR --out FILE
#   DIR/lib/modules/KVER holds the kernel's modules (with modules.dep).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
kernel_root="" kver="" sprout="" definitions="" out=""
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel-root) kernel_root="$2"; shift 2 ;;
	--kver) kver="$2"; shift 2 ;;
	--sprout) sprout="$2"; shift 2 ;;
	--definitions) definitions="$2"; shift 2 ;;
	--out) out="$2"; shift 2 ;;
	*) echo "build-dracut-initrd: unknown argument $1" >&2; exit 2 ;;
	esac
done
for v in kernel_root kver sprout definitions out; do
	[ -n "${!v}" ] || { echo "build-dracut-initrd: --${v//_/-} is required" >&2; exit 2; }
done
command -v dracut >/dev/null || { echo "build-dracut-initrd: dracut is missing (apt-get install dracut-core)" >&2; exit 1; }
[ -d /usr/lib/dracut/modules.d ] || { echo "build-dracut-initrd: /usr/lib/dracut/modules.d is missing" >&2; exit 1; }
[ -x "$sprout" ] || { echo "build-dracut-initrd: $sprout is not an executable" >&2; exit 1; }
kmoddir="$(cd "$kernel_root/lib/modules/$kver" && pwd)"

work="$(mktemp -d "${out}.work.XXXXXX")"
work="$(cd "$work" && pwd)"
mkdir -p "$work/no-conf.d"
trap 'rm -rf "$work"' EXIT

# A private copy of dracut's base directory with our module added.
cp -a /usr/lib/dracut "$work/dracut"
mod="$work/dracut/modules.d/90sprout"
cp -rL "$repo/initrd/dracut/90sprout" "$mod"
cp "$repo/systemd-units/sprout.service" "$mod/"

# Only what the appliance needs: storage and file system drivers are forced
# in and loaded early, so the root's fstab can mount vfat and squashfs too.
drivers="virtio_pci virtio_blk virtio_scsi nvme sd_mod loop ext4 vfat nls_cp437 nls_ascii nls_iso8859-1 nls_utf8 squashfs efivarfs"
export sprout_binary="$sprout" sprout_definitions="$definitions"
dracutbasedir="$work/dracut" dracut \
	--quiet --force --no-hostonly --no-hostonly-cmdline --reproducible \
	--conf /dev/null --confdir "$work/no-conf.d" \
	--kver "$kver" --kmoddir "$kmoddir" \
	--modules "systemd systemd-initrd dracut-systemd udev-rules base fs-lib rootfs-block kernel-modules sprout" \
	--drivers "$drivers" --force-drivers "loop ext4 vfat squashfs nls_cp437 nls_ascii nls_iso8859-1 nls_utf8" \
	--no-early-microcode --nostrip --no-compress \
	--tmpdir "$work" \
	"$out"
echo "build-dracut-initrd: $out ($(du -h "$out" | cut -f1))"
