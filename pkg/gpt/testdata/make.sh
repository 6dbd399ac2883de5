#!/bin/sh
# Usage: make.sh [OUTDIR]   (default: this directory)
# Regenerates the reference images used by pkg/gpt's tests. Needs root (loop
# devices for the 4096-byte-sector images), sfdisk, sgdisk, systemd-repart 252
# and gzip. Each image is 16 MiB; NAME.img.gz is the image, NAME.json is what
# `sfdisk --json` says about it (the tests compare sprout's reading with it).
#
#   layout-SS   sfdisk script (slots 1,2,3,5; slot 5 lies before slot 2; a
#               36-UTF-16-unit name; attribute bits 0, 2, 48, 55, 59, 60, 63),
#               then `sgdisk -c` for a name with a surrogate pair, which sfdisk
#               cannot encode.
#   repart-SS   systemd-repart --empty=force with three definitions and a
#               fixed seed.
#   moved-512   layout-512 with the primary entry array moved to LBA 64
#               (sgdisk --move-main-table).
#   dos-512     sfdisk "label: dos" with two partitions.
set -eu
cd "${1:-$(dirname "$0")}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# layout_script SECTORS_PER_MIB: an sfdisk script with the partitions placed
# at the same byte offsets for any sector size.
layout_script() {
	m=$1
	cat <<SCRIPT
label: gpt
label-id: 11111111-2222-3333-4444-555555555555
unit: sectors

p1 : start=$((1*m)), size=$((2*m)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=AAAAAAAA-0001-4000-8000-000000000001, name="EFI System Partition", attrs="RequiredPartition"
p2 : start=$((7*m)), size=$((4*m)), type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=AAAAAAAA-0002-4000-8000-000000000002, name="Wurzel-Dateisystem-äöü-ΩΨΦ-日本語テスト!!!", attrs="GUID:59,60,63"
p3 : start=$((11*m)), size=$((1*m)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=AAAAAAAA-0003-4000-8000-000000000003, attrs="LegacyBIOSBootable GUID:48,55"
p5 : start=$((3*m)), size=$((4*m)), type=8484680C-9521-48C6-9C11-B0720656F69E, uuid=AAAAAAAA-0005-4000-8000-000000000005, name="usr-x86-64", attrs="GUID:60"
SCRIPT
}

# on_device SECTOR_SIZE IMAGE CMD...: runs CMD with "$dev" set to IMAGE, or
# to a loop device over IMAGE with the given logical sector size.
on_device() {
	ss=$1 img=$2
	shift 2
	if [ "$ss" = 512 ]; then
		dev=$img "$@"
	else
		dev=$(losetup -f --show --sector-size "$ss" "$img")
		export dev
		rc=0
		"$@" || rc=$?
		losetup -d "$dev"
		return $rc
	fi
}

make_layout() {
	layout_script $((1048576 / $1)) | sfdisk -q "$dev"
	sgdisk -c '3:emoji-😀-x' "$dev" >/dev/null
}

mkdir -p "$tmp/defs"
printf '[Partition]\nType=esp\nSizeMinBytes=4M\nSizeMaxBytes=4M\n' >"$tmp/defs/10-esp.conf"
printf '[Partition]\nType=root-x86-64\nLabel=root\nReadOnly=yes\nSizeMinBytes=4M\nSizeMaxBytes=4M\n' >"$tmp/defs/20-root.conf"
printf '[Partition]\nType=home\nLabel=home\nSizeMinBytes=1M\n' >"$tmp/defs/30-home.conf"
make_repart() {
	systemd-repart --dry-run=no --empty=force --no-pager --definitions="$tmp/defs" \
		--seed=0123456789abcdef0123456789abcdef "$dev" >/dev/null 2>&1
}

save() {
	name=$1 ss=$2
	on_device "$ss" "$tmp/$name.img" sh -c 'sfdisk --json "$dev" | sed "s#\"device\": \".*\"#\"device\": \"'"$name"'\"#; s#\"node\": \"[^\"]*\\([0-9]\\)\"#\"node\": \"\\1\"#"' >"$name.json"
	gzip -9 -n -c "$tmp/$name.img" >"$name.img.gz"
}

for ss in 512 4096; do
	truncate -s 16M "$tmp/layout-$ss.img"
	on_device "$ss" "$tmp/layout-$ss.img" make_layout "$ss"
	save "layout-$ss" "$ss"

	truncate -s 16M "$tmp/repart-$ss.img"
	on_device "$ss" "$tmp/repart-$ss.img" make_repart
	save "repart-$ss" "$ss"
done

cp "$tmp/layout-512.img" "$tmp/moved-512.img"
sgdisk --move-main-table=64 "$tmp/moved-512.img" >/dev/null
save moved-512 512

truncate -s 16M "$tmp/dos-512.img"
printf 'label: dos\nlabel-id: 0x12345678\n\nstart=2048, size=8192, type=83\nstart=10240, size=8192, type=82\n' | sfdisk -q "$tmp/dos-512.img"
gzip -9 -n -c "$tmp/dos-512.img" >dos-512.img.gz
