#!/bin/bash
# Builds an initramfs-tools initrd (busybox shell /init, udev, no systemd)
# with the sprout hook and local-premount script from this checkout, for a
# kernel that is not installed on the host.
#
# mkinitramfs only reads /lib/modules/KVER and /boot/config-KVER, so it runs
# in a private mount namespace where the unpacked kernel is bind-mounted
# there; the host's files are not touched.
#
# usage: build-initramfs-tools-initrd.sh --kernel-root DIR --kver KVER
#            --sprout BIN --definitions DIR --out FILE
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
kernel_root="" kver="" sprout="" definitions="" out=""
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel-root) kernel_root="$2"; shift 2 ;;
	--kver) kver="$2"; shift 2 ;;
	--sprout) sprout="$2"; shift 2 ;;
	--definitions) definitions="$2"; shift 2 ;;
	--out) out="$2"; shift 2 ;;
	*) echo "build-initramfs-tools-initrd: unknown argument $1" >&2; exit 2 ;;
	esac
done
for v in kernel_root kver sprout definitions out; do
	[ -n "${!v}" ] || { echo "build-initramfs-tools-initrd: --${v//_/-} is required" >&2; exit 2; }
done
command -v mkinitramfs >/dev/null ||
	{ echo "build-initramfs-tools-initrd: mkinitramfs is missing (apt-get install initramfs-tools-core)" >&2; exit 1; }
command -v unshare >/dev/null || { echo "build-initramfs-tools-initrd: unshare is missing (util-linux)" >&2; exit 1; }
[ -x "$sprout" ] || { echo "build-initramfs-tools-initrd: $sprout is not an executable" >&2; exit 1; }
kernel_root="$(cd "$kernel_root" && pwd)"
sprout="$(cd "$(dirname "$sprout")" && pwd)/$(basename "$sprout")"
definitions="$(cd "$definitions" && pwd)"
[ -f "$kernel_root/boot/config-$kver" ] || { echo "build-initramfs-tools-initrd: no $kernel_root/boot/config-$kver" >&2; exit 1; }

work="$(mktemp -d "${out}.work.XXXXXX")"
work="$(cd "$work" && pwd)"
trap 'rm -rf "$work"' EXIT

conf="$work/conf"
mkdir -p "$conf/conf.d" "$conf/hooks" "$conf/scripts/local-premount"
cat >"$conf/initramfs.conf" <<'EOF'
MODULES=list
BUSYBOX=y
COMPRESS=gzip
COMPRESSLEVEL=1
RUNSIZE=10%
FSTYPE=ext4
EOF
# Storage and file system drivers; the root's fstab mounts vfat and squashfs.
printf '%s\n' virtio_pci virtio_blk nvme loop ext4 vfat nls_cp437 nls_ascii nls_iso8859-1 nls_utf8 squashfs >"$conf/modules"
cp "$here/initramfs-tools/hooks/sprout" "$conf/hooks/sprout"
cp "$here/initramfs-tools/scripts/local-premount/sprout" "$conf/scripts/local-premount/sprout"
cat >"$conf/conf.d/sprout" <<EOF
SPROUT_BINARY=$sprout
SPROUT_DEFINITIONS=$definitions
SPROUT_UNIT=$(cd "$here/.." && pwd)/systemd-units/sprout.service
EOF

mkdir -p /usr/lib/modules /boot
unshare --mount --propagation private /bin/sh -euc '
	mount --bind "$1/lib/modules" /usr/lib/modules
	mount --bind "$1/boot" /boot
	mkinitramfs -d "$2" -o "$3" "$4"
' build "$kernel_root" "$conf" "$out" "$kver"
echo "build-initramfs-tools-initrd: $out ($(du -h "$out" | cut -f1))"
