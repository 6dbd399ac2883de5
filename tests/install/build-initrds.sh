#!/bin/bash
# The installed path, as a user takes it: install sprout with `make install`
# (--how make) or with `apt-get install ./sprout_*.deb` (--how deb), put the
# seed article's definitions into the repart.d search path, and build
# initrds with the host's own tools: `dracut --add sprout` and
# `mkinitramfs`. Before that, check that both integrations refuse to build
# an initrd that could not grow the disk.
#
# All of it runs in a private mount namespace whose /usr, /etc and /var
# are overlays with a throwaway upper layer (tmpfs): the install is real
# (same dracut, same files, same dpkg database), but no other process on
# the machine sees it, and it is gone when this script ends.
#
# usage: build-initrds.sh --how make|deb [--deb FILE] --kernel-root DIR
#            --kver KVER --out DIR
#   DIR/lib/modules/KVER and DIR/boot/config-KVER: the kernel to build for.
#   Writes OUT/initrd-dracut.img, OUT/initrd-initramfs-tools.img, OUT/log.
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
how="" deb="" kernel_root="" kver="" out=""
args=("$@")
while [ $# -gt 0 ]; do
	case "$1" in
	--how) how="$2"; shift 2 ;;
	--deb) deb="$2"; shift 2 ;;
	--kernel-root) kernel_root="$2"; shift 2 ;;
	--kver) kver="$2"; shift 2 ;;
	--out) out="$2"; shift 2 ;;
	*) echo "build-initrds: unknown argument $1" >&2; exit 2 ;;
	esac
done
case "$how" in make) ;; deb) [ -f "$deb" ] || { echo "build-initrds: --how deb needs --deb FILE" >&2; exit 2; } ;;
*) echo "build-initrds: --how make|deb" >&2; exit 2 ;; esac
for v in kernel_root kver out; do
	[ -n "${!v}" ] || { echo "build-initrds: --${v//_/-} is required" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "build-initrds: needs root (mount namespaces)" >&2; exit 1; }

if [ -z "${SPROUT_INSTALL_NS:-}" ]; then
	SPROUT_INSTALL_NS=1 exec unshare --mount --propagation private "$0" "${args[@]}"
fi

kernel_root="$(cd "$kernel_root" && pwd)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
[ -z "$deb" ] || deb="$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")"
log() { printf 'installed-path(%s): %s\n' "$how" "$*"; }

# --- a throwaway layer over /usr, /etc and /var ------------------------------
layer="$(mktemp -d /tmp/sprout-installed.XXXXXX)"
cleanup() {
	umount -R /var /etc /usr /boot 2>/dev/null || true
	umount "$layer" 2>/dev/null || true
	rmdir "$layer" 2>/dev/null || true
}
trap cleanup EXIT
mount -t tmpfs -o size=2g sprout-layer "$layer"
for d in usr etc var; do
	mkdir -p "$layer/$d.upper" "$layer/$d.work"
	mount -t overlay overlay -o "lowerdir=/$d,upperdir=$layer/$d.upper,workdir=$layer/$d.work" "/$d"
done
# The kernel to build for, where mkinitramfs (and depmod) look.
mkdir -p /usr/lib/modules
mount --bind "$kernel_root/lib/modules" /usr/lib/modules
mount --bind "$kernel_root/boot" /boot

# --- install -----------------------------------------------------------------
start=$SECONDS
if [ "$how" = make ]; then
	command -v sprout >/dev/null && { echo "build-initrds: sprout is already installed on this machine ($(command -v sprout))" >&2; exit 1; }
	make -s -C "$repo" install >/dev/null
	log "make install: $(cd "$layer" && find usr.upper etc.upper -type f | sed 's/\.upper//' | sort | tr '\n' ' ')"
else
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$deb" >"$out/apt.log" 2>&1 ||
		{ cat "$out/apt.log" >&2; echo "build-initrds: apt-get install $deb failed" >&2; exit 1; }
	log "apt-get install ./$(basename "$deb"): $(dpkg-query -W -f '${Package} ${Version} ${db:Status-Status}' sprout), $(dpkg -L sprout | wc -l) paths"
fi
[ -x /usr/bin/sprout ] || { echo "build-initrds: /usr/bin/sprout is not there after the install" >&2; exit 1; }
# The unit is the dracut module's: nothing for systemctl on the host.
unit=/usr/lib/dracut/modules.d/90sprout/sprout.service
[ -f "$unit" ] || { echo "build-initrds: $unit is not there after the install" >&2; exit 1; }
for d in /etc/systemd/system /run/systemd/system /usr/local/lib/systemd/system /usr/lib/systemd/system /lib/systemd/system; do
	[ ! -e "$d/sprout.service" ] || { echo "build-initrds: the install put a host unit at $d/sprout.service" >&2; exit 1; }
done

# The user's definitions: the seed article's home and var, in the search
# path (make: /etc/repart.d; deb: /usr/local/lib/repart.d, a later entry).
defs=/etc/repart.d
[ "$how" = deb ] && defs=/usr/local/lib/repart.d
for d in /etc/repart.d /run/repart.d /usr/local/lib/repart.d /usr/lib/repart.d; do
	if compgen -G "$d/*.conf" >/dev/null; then
		echo "build-initrds: this machine already has definitions in $d; they would go into the test's initrd" >&2
		exit 1
	fi
done
mkdir -p "$defs"
cp "$repo"/tests/qemu/definitions/*.conf "$defs/"

# Host configuration for the appliance, as its builder would write it:
# the kernel modules its virtual hardware and fstab need, and only those
# (a generic initrd with every driver takes minutes to build here), loaded
# in the initrd because the appliance's root has no modules of its own.
# Nothing here is about sprout: the module and the hook add what it needs.
appliance_modules="virtio_pci virtio_blk ext4 vfat squashfs nls_cp437 nls_ascii nls_iso8859-1 nls_utf8"
# The media the tier boots besides virtio: an SD card, USB mass storage,
# virtio-scsi, NVMe.
appliance_modules+=" sdhci_pci mmc_block xhci_pci usb_storage sd_mod virtio_scsi nvme"
mkdir -p /etc/dracut.conf.d
cat >/etc/dracut.conf.d/90-test-appliance.conf <<CONF
drivers+=" $appliance_modules "
force_drivers+=" $appliance_modules "
# A test machine's shortcuts, not sprout's: no microcode, no stripping and
# no compression save minutes of a 2-core machine and change nothing a
# boot of the appliance depends on.
early_microcode="no"
do_strip="no"
compress="cat"
CONF
sed -i 's/^MODULES=.*/MODULES=list/' /etc/initramfs-tools/initramfs.conf
printf '%s\n' $appliance_modules >>/etc/initramfs-tools/modules
if [ "$how" = deb ]; then
	# The other documented way to ask for the module.
	echo 'add_dracutmodules+=" sprout "' >/etc/dracut.conf.d/50-sprout.conf
	dracut_add=()
else
	dracut_add=(--add sprout)
fi
kmoddir="/usr/lib/modules/$kver"
dracut_cmd=(dracut --force "${dracut_add[@]}" --kver "$kver" --kmoddir "$kmoddir")

# --- refusals: each must fail the build and name what is missing -------------
# (once, with make install; the .deb ships the same module and hook)
# expect_refusal WHAT PATTERN CMD...: CMD fails, and its output has a
# line matching PATTERN.
refusals=0
expect_refusal() {
	local what=$1 pattern=$2
	shift 2
	local o rc=0
	o="$("$@" 2>&1)" || rc=$?
	if [ "$rc" = 0 ]; then
		echo "build-initrds: $what: the build succeeded; it must refuse" >&2
		printf '%s\n' "$o" | tail -20 >&2
		exit 1
	fi
	if ! grep -E -q "$pattern" <<<"$o"; then
		echo "build-initrds: $what: exit $rc, but no line matches /$pattern/:" >&2
		printf '%s\n' "$o" | tail -20 >&2
		exit 1
	fi
	log "refused: $what: $(grep -E -m1 "$pattern" <<<"$o")"
	refusals=$((refusals + 1))
}
scratch="$layer/scratch.img"
hide() { mv "$1" "$layer/hidden"; }
unhide() { mv "$layer/hidden" "$1"; }
mkinitramfs_cmd=(mkinitramfs -o "$scratch" "$kver")

if [ "$how" = make ]; then
hide /usr/bin/sprout
expect_refusal "dracut without the binary" 'sprout: the sprout binary is missing' "${dracut_cmd[@]}" "$scratch"
expect_refusal "mkinitramfs without the binary" 'sprout hook: the sprout binary is missing' "${mkinitramfs_cmd[@]}"
unhide /usr/bin/sprout
hide "$unit"
expect_refusal "dracut without the unit" 'sprout: the unit .*sprout.service is missing' "${dracut_cmd[@]}" "$scratch"
unhide "$unit"
mkfs_xfs="$(command -v mkfs.xfs)"
echo 'Format=xfs' >>"$defs/20-var.conf"
hide "$mkfs_xfs"
expect_refusal "dracut, Format=xfs without mkfs.xfs" 'Format=xfs needs mkfs.xfs, which is missing' "${dracut_cmd[@]}" "$scratch"
expect_refusal "mkinitramfs, Format=xfs without mkfs.xfs" 'Format=xfs needs mkfs.xfs, which is missing' "${mkinitramfs_cmd[@]}"
unhide "$mkfs_xfs"
cp "$repo/tests/qemu/definitions/20-var.conf" "$defs/20-var.conf"
cryptsetup_bin="$(command -v cryptsetup)"
echo 'Encrypt=key-file' >>"$defs/20-var.conf"
hide "$cryptsetup_bin"
expect_refusal "dracut, Encrypt=key-file without cryptsetup" 'Encrypt=key-file needs cryptsetup, which is missing \(install cryptsetup-bin\)' "${dracut_cmd[@]}" "$scratch"
expect_refusal "mkinitramfs, Encrypt=key-file without cryptsetup" 'Encrypt=key-file needs cryptsetup, which is missing \(install cryptsetup-bin\)' "${mkinitramfs_cmd[@]}"
unhide "$cryptsetup_bin"
cp "$repo/tests/qemu/definitions/20-var.conf" "$defs/20-var.conf"
# A definition the parser refuses is refused at build time, with its
# file:line, as the boot would refuse it.
# (Format= takes any name, as systemd's parser does: whether sprout can
# make it depends on whether the partition exists, which only the boot sees.)
echo 'SizeMinBytes=lots' >>"$defs/20-var.conf"
expect_refusal "dracut, SizeMinBytes=lots (the parser's refusal)" '20-var.conf:[0-9]+: invalid value for SizeMinBytes=' "${dracut_cmd[@]}" "$scratch"
expect_refusal "mkinitramfs, SizeMinBytes=lots (the parser's refusal)" '20-var.conf:[0-9]+: invalid value for SizeMinBytes=' "${mkinitramfs_cmd[@]}"
cp "$repo/tests/qemu/definitions/20-var.conf" "$defs/20-var.conf"
mv "$defs" "$layer/defs"
expect_refusal "dracut without definitions" 'sprout: no repart.d definitions' "${dracut_cmd[@]}" "$scratch"
mv "$layer/defs" "$defs"
rm -f "$scratch"
fi

# --- the initrds ---------------------------------------------------------------
t=$SECONDS
"${dracut_cmd[@]}" "$out/initrd-dracut.img" >"$out/dracut.log" 2>&1 ||
	{ tail -30 "$out/dracut.log" >&2; echo "build-initrds: dracut failed" >&2; exit 1; }
log "${dracut_cmd[*]} $out/initrd-dracut.img: $(du -h "$out/initrd-dracut.img" | cut -f1), $((SECONDS - t)) s"
t=$SECONDS
"${mkinitramfs_cmd[@]/$scratch/$out/initrd-initramfs-tools.img}" >"$out/mkinitramfs.log" 2>&1 ||
	{ tail -30 "$out/mkinitramfs.log" >&2; echo "build-initrds: mkinitramfs failed" >&2; exit 1; }
log "mkinitramfs -o $out/initrd-initramfs-tools.img $kver: $(du -h "$out/initrd-initramfs-tools.img" | cut -f1), $((SECONDS - t)) s"

# What went in: sprout, its unit (dracut) or script, the definitions, mke2fs.
lsinitrd "$out/initrd-dracut.img" >"$out/dracut.contents"
for want in usr/bin/sprout etc/repart.d/10-home.conf etc/repart.d/20-var.conf mke2fs; do
	grep -q "$want" "$out/dracut.contents" || { echo "build-initrds: the dracut initrd has no $want" >&2; exit 1; }
done
# No Encrypt= in the definitions: nothing sprout adds for encryption.
# (dm-crypt may be there all the same: a generic, not host-only dracut
# includes its own crypt module whenever the host has systemd-cryptsetup.)
for unwanted in sbin/cryptsetup systemd-cryptenroll libtss2-esys; do
	if grep -q "$unwanted" "$out/dracut.contents"; then echo "build-initrds: the dracut initrd has $unwanted, but no definition says Encrypt=" >&2; exit 1; fi
done
if grep -q 'usr/lib/systemd/systemd$\|lib/systemd/systemd$' "$out/dracut.contents"; then
	grep -q 'sprout.service' "$out/dracut.contents" || { echo "build-initrds: the systemd initrd has no sprout.service" >&2; exit 1; }
	log "dracut built a systemd initrd: sprout.service enabled"
else
	log "dracut built an initrd without systemd: sprout runs from the pre-mount hook"
fi
lsinitramfs "$out/initrd-initramfs-tools.img" >"$out/initramfs-tools.contents"
for want in usr/bin/sprout scripts/local-premount/sprout etc/repart.d/10-home.conf sbin/mke2fs; do
	grep -q "$want" "$out/initramfs-tools.contents" || { echo "build-initrds: the initramfs-tools initrd has no $want" >&2; exit 1; }
done
for unwanted in sbin/cryptsetup dm-crypt.ko systemd-cryptenroll libtss2-esys; do
	if grep -q "$unwanted" "$out/initramfs-tools.contents"; then echo "build-initrds: the initramfs-tools initrd has $unwanted, but no definition says Encrypt=" >&2; exit 1; fi
done
# One command line for every initrd: the unit's, pinned to the host's
# systemd (--compat=) when the binary takes it (a compat record).
pin=""
if /usr/bin/sprout --initrd-needs=all | grep -q '^compat'; then
	pin=" --compat=$(systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')"
fi
want_exec="$(sed -n 's/^ExecStart=//p' "$unit")$pin"
got_exec="$(lsinitrd -f usr/lib/systemd/system/sprout.service "$out/initrd-dracut.img" 2>/dev/null | sed -n 's/^ExecStart=//p')"
[ "$got_exec" = "$want_exec" ] || { echo "build-initrds: the dracut initrd's unit runs '$got_exec', want '$want_exec'" >&2; exit 1; }
want_cmd="$(sed -n 's/^Environment=\(.*\)/\1 /p' "$unit" | tr -d '\n')$want_exec"
unpacked="$layer/unpacked"
mkdir -p "$unpacked" && unmkinitramfs "$out/initrd-initramfs-tools.img" "$unpacked"
got_cmd="$(cat "$(find "$unpacked" -path '*/usr/lib/sprout/command' | head -1)")"
[ "$got_cmd" = "$want_cmd" ] || { echo "build-initrds: the initramfs-tools initrd runs '$got_cmd', want '$want_cmd'" >&2; exit 1; }
log "both initrds run: $want_cmd${pin:+ (pinned to the systemd of this host)}"
log "$refusals refusals as expected; install and both initrds in $((SECONDS - start)) s; the overlay is discarded now"
