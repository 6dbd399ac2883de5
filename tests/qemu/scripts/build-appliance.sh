#!/bin/bash
# Builds the seed article's appliance image, as a small raw disk:
#   1 ESP         vfat      PARTLABEL=boot   (64 MiB)
#   2 store       squashfs  PARTLABEL=store  (read-only, like the article's nix-store)
#   3 root        ext4      PARTLABEL=root   (busybox init, /etc/os-release, fstab)
# /home and /var are absent: the root's fstab expects them by PARTLABEL and
# sprout creates them on first boot. The caller copies the image and grows
# the copy (truncate -s +10G), as if it had been dd'ed onto a bigger disk.
#
# usage: build-appliance.sh --out FILE [--sector-size 512|4096] [--guest-init FILE]
set -euo pipefail

out=""
sector_size=512
here="$(cd "$(dirname "$0")" && pwd)"
guest_init="$here/../guest/init"
while [ $# -gt 0 ]; do
	case "$1" in
	--out) out="$2"; shift 2 ;;
	--sector-size) sector_size="$2"; shift 2 ;;
	--guest-init) guest_init="$2"; shift 2 ;;
	*) echo "build-appliance: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -n "$out" ] || { echo "build-appliance: --out is required" >&2; exit 2; }
case "$sector_size" in 512|4096) ;; *) echo "build-appliance: sector size must be 512 or 4096" >&2; exit 2 ;; esac
for tool in mkfs.vfat mksquashfs mkfs.ext4 sfdisk losetup busybox file; do
	command -v "$tool" >/dev/null || { echo "build-appliance: $tool is missing (apt-get install dosfstools squashfs-tools e2fsprogs fdisk mount busybox-static)" >&2; exit 1; }
done
# The guest's PID 1 is busybox; it must not need a dynamic loader.
busybox_bin="$(command -v busybox)"
if ! file -L "$busybox_bin" 2>/dev/null | grep -q 'statically linked'; then
	[ -x /bin/busybox ] && file -L /bin/busybox | grep -q 'statically linked' && busybox_bin=/bin/busybox ||
		{ echo "build-appliance: need a static busybox (apt-get install busybox-static)" >&2; exit 1; }
fi

work="$(mktemp -d "${out}.work.XXXXXX")"
loopdev=""
cleanup() {
	[ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

mib=$((1024 * 1024))
# Fixed identities make the image reproducible and the host checks exact.
export SOURCE_DATE_EPOCH=1700000000

# --- root file system: busybox as init -------------------------------------
root="$work/root"
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,run,tmp,home,var,store,boot,mnt}
cp "$busybox_bin" "$root/bin/busybox"
for applet in $("$busybox_bin" --list); do
	[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
install -m 0755 "$guest_init" "$root/sbin/init"
cat >"$root/etc/os-release" <<'EOF'
NAME="sprout test appliance"
ID=sprout-appliance
PRETTY_NAME="sprout test appliance (busybox)"
EOF
# Like the article's filesystems.nix: everything by partition label. /var is
# also mounted by the initrd (x-initrd.mount), so the initrd itself waits for
# a device that exists only after sprout has run.
cat >"$root/etc/fstab" <<'EOF'
/dev/disk/by-partlabel/boot   /boot   vfat      ro                         0 0
/dev/disk/by-partlabel/store  /store  squashfs  ro                         0 0
/dev/disk/by-partlabel/home   /home   ext4      rw                         0 2
/dev/disk/by-partlabel/var    /var    ext4      rw,x-initrd.mount          0 2
EOF
mkfs.ext4 -q -F -L root -U 6a4c1b7e-5f0e-4b43-9a53-1c1e6f0c0a01 -E root_owner=0:0 -d "$root" -b 4096 "$work/root.img" 32M >/dev/null

# --- store: read-only squashfs ---------------------------------------------
store="$work/store"
mkdir -p "$store/share"
echo "sprout appliance store" >"$store/README"
cp "$busybox_bin" "$store/share/busybox"
mksquashfs "$store" "$work/store.img" -quiet -noappend -all-root -b 131072 >/dev/null

# --- ESP ---------------------------------------------------------------------
truncate -s 64M "$work/esp.img"
mkfs.vfat -S "$sector_size" -n BOOT -i 5EED0001 "$work/esp.img" >/dev/null

# --- disk --------------------------------------------------------------------
round_mib() { echo $(( ($1 + mib - 1) / mib )); }
esp_mib=64
store_mib=$(round_mib "$(stat -c %s "$work/store.img")")
root_mib=32
esp_start=1
store_start=$((esp_start + esp_mib))
root_start=$((store_start + store_mib))
end_mib=$((root_start + root_mib + 1)) # 1 MiB tail for the backup GPT
rm -f "$out"
truncate -s "${end_mib}M" "$out"

# A file has 512-byte sectors to sfdisk; for 4096-byte sectors a loop
# device with --sector-size gives it the geometry the disk has in QEMU.
target="$out"
if [ "$sector_size" != 512 ]; then
	loopdev="$(losetup --show -f --sector-size "$sector_size" "$out")"
	target="$loopdev"
fi
spm=$((mib / sector_size)) # sectors per MiB
sfdisk --quiet --no-reread --no-tell-kernel "$target" <<EOF
label: gpt
label-id: 5EED0000-0000-4000-8000-000000000000
first-lba: $((spm))
start=$((esp_start * spm)), size=$((esp_mib * spm)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=5EED0001-0000-4000-8000-000000000001, name="boot"
start=$((store_start * spm)), size=$((store_mib * spm)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=5EED0002-0000-4000-8000-000000000002, name="store", attrs="GUID:60"
start=$((root_start * spm)), size=$((root_mib * spm)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=5EED0003-0000-4000-8000-000000000003, name="root"
EOF
if [ -n "$loopdev" ]; then
	losetup -d "$loopdev"
	loopdev=""
fi

dd if="$work/esp.img" of="$out" bs=1M seek="$esp_start" conv=notrunc,sparse status=none
dd if="$work/store.img" of="$out" bs=1M seek="$store_start" conv=notrunc,sparse status=none
dd if="$work/root.img" of="$out" bs=1M seek="$root_start" conv=notrunc,sparse status=none
sync "$out"
echo "build-appliance: $out ($(du -h --apparent-size "$out" | cut -f1), ${sector_size}-byte sectors)"
