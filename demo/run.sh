#!/bin/bash
# `make demo`: the seed article's `nix run`, on Debian with sprout.
#
# Builds the article's appliance image: an ESP labelled "boot" (vfat, 200M)
# with systemd-boot and a unified kernel image (Debian's kernel + a dracut
# systemd initrd with sprout + a command line without root= or
# sprout.device=), and a read-only squashfs "nix-store" with the system; the
# root is a tmpfs; /boot and /nix/store are mounted by partition label,
# /home and /var by the fstab lines sprout generates from the definitions'
# MountPoint= (docs/boot.md). It copies the image, grows the copy by 10G as if it had
# been dd'ed onto a bigger disk, and boots it twice in QEMU with UEFI
# firmware (OVMF), as the article's run-image does:
#   boot 1: sprout finds the disk through systemd-boot's LoaderDevicePartUUID
#           and creates /home and /var (ext4, 2:1) before they are mounted;
#   boot 2: sprout finds nothing to do and writes nothing.
# Everything it builds goes to build/demo/ (the kernel is shared with the
# QEMU tier in build/qemu/kernel/). It needs no arguments.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$repo/build/demo"
scripts="$repo/tests/qemu/scripts"
cd "$repo"

bold=$'\e[1m' reset=$'\e[0m'
[ -t 1 ] || { bold="" reset=""; }
step() { printf '\n%s== %s ==%s\n' "$bold" "$*" "$reset"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

step "1/7 Debian packages"
"$scripts/deps.sh" --demo
command -v go >/dev/null || die "Go is missing: install Go 1.26 (https://go.dev/dl/) and run make demo again"
[ "$(id -u)" = 0 ] || die "run as root (dracut and the image builder need it): sudo make demo"
echo "qemu-system-x86, ovmf, systemd-boot-efi, dracut, busybox-static, squashfs-tools, dosfstools, mtools, parted: present"

step "2/7 sprout (static Go binary)"
mkdir -p "$out"
CGO_ENABLED=0 go build -trimpath -o "$out/sprout" ./cmd/sprout
file "$out/sprout" | grep -q 'statically linked' || die "$out/sprout is not static"
"$out/sprout" --version

step "3/7 Debian's kernel"
kernel_info="$("$scripts/fetch-kernel.sh" "$repo/build/qemu/kernel")"
kver="$(sed -n 's/^KVER=//p' <<<"$kernel_info")"
kroot="$(sed -n 's/^ROOT=//p' <<<"$kernel_info")"
echo "linux $kver"

step "4/7 initrd: dracut (systemd) + sprout + the article's partitions"
for f in demo/repart.d/*.conf; do echo "--- $f"; grep -v '^#' "$f"; done
"$repo/initrd/build-dracut-initrd.sh" --kernel-root "$kroot" --kver "$kver" \
	--sprout "$out/sprout" --definitions "$repo/demo/repart.d" --out "$out/initrd.img"

step "5/7 the appliance image (ESP + nix-store), dd'ed onto a bigger disk"
# The article's partitions: a 200M ESP and a 343.3 MiB store (ours holds a
# few MiB of squashfs in a partition as big), so that sprout's table and
# picture of the grown disk read like the article's log.
"$scripts/build-uefi-appliance.sh" --kernel "$kroot/boot/vmlinuz-$kver" --initrd "$out/initrd.img" \
	--esp-mib 200 --store-mib 344 --out "$out/image.raw"
echo "\$ cp image.raw demo-disk.raw && qemu-img resize -f raw demo-disk.raw +10G"
cp --sparse=always "$out/image.raw" "$out/demo-disk.raw"
qemu-img resize -q -f raw "$out/demo-disk.raw" +10G
echo "\$ parted demo-disk.raw print"
(cd "$out" && parted -s demo-disk.raw print 2>&1)
# The machine's own UEFI variable store (systemd-boot writes to it).
cp /usr/share/OVMF/OVMF_VARS_4M.fd "$out/OVMF_VARS.fd"

# boot N: boot the disk with UEFI firmware, the serial console on this
# terminal; the guest powers off by itself. The console also goes to
# boot-N.log.
boot() {
	local n=$1 log="$out/boot-$1.log"
	echo "(serial console follows: OVMF, systemd-boot, the UKI; the guest powers off by itself, or stop it with Ctrl-C)"
	timeout 900 qemu-system-x86_64 -nodefaults -no-user-config -machine q35 -accel tcg -m 1024 -smp 1 \
		-display none -monitor none -serial stdio -no-reboot \
		-drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
		-drive if=pflash,format=raw,unit=1,file="$out/OVMF_VARS.fd" \
		-drive "file=$out/demo-disk.raw,format=raw,if=none,id=disk0" -device virtio-blk-pci,drive=disk0 \
		</dev/null | tee "$log"
	grep -q 'SPROUT-GUEST done' "$log" || die "boot $n did not reach the appliance's root (log: $log)"
}

# sprout_said N: sprout's own lines from the guest's console (journald
# forwards them), without the timestamps: the article's
# "journalctl -u systemd-repart.service".
sprout_said() {
	sed -n 's/\x1b\[[0-9;]*m//g; s/\r//; s/^.*sprout\[[0-9]*\]: /    /p' "$out/boot-$1.log" | grep -v '^    *$' || true
}
guest_said() {
	sed -n 's/\r//; s/^.*SPROUT-GUEST '"$2"' /    /p' "$out/boot-$1.log"
}
gpt_areas() {
	{ head -c 1048576 "$out/demo-disk.raw"; tail -c 1048576 "$out/demo-disk.raw"; } | sha256sum | cut -c1-16
}

step "6/7 first boot: sprout grows the disk in the initrd"
boot 1
step "what sprout said in the initrd (boot 1)"
sprout_said 1
grep -aq 'EFI variable LoaderDevicePartUUID: PARTUUID=.* is /dev/vda1' "$out/boot-1.log" ||
	die "sprout did not find the disk through LoaderDevicePartUUID"
step "what the booted appliance sees (boot 1)"
echo "\$ lsblk"
guest_said 1 lsblk
guest_said 1 writable
echo "(the root's fstab lines for /home and /var, generated by sprout from MountPoint=)"
guest_said 1 fstab-generated
echo "\$ parted demo-disk.raw print"
(cd "$out" && parted -s demo-disk.raw print 2>&1)
before="$(gpt_areas)"

step "7/7 second boot: nothing to do"
boot 2
step "what sprout said in the initrd (boot 2)"
sprout_said 2
after="$(gpt_areas)"
grep -aq 'No changes' "$out/boot-2.log" || die "sprout did not report \"No changes\" on the second boot"
if [ "$before" = "$after" ]; then
	echo "GPT areas (first and last MiB) unchanged by boot 2: sha256 $after"
else
	die "boot 2 changed the GPT areas ($before -> $after)"
fi
echo "\$ parted demo-disk.raw print"
(cd "$out" && parted -s demo-disk.raw print 2>&1)
printf '\n%sDone.%s The disk is %s; the boot logs are %s/boot-1.log and boot-2.log.\n' "$bold" "$reset" "$out/demo-disk.raw" "$out"
