#!/bin/bash
# Builds the seed article's appliance as the article boots it, as a raw disk:
#   1 ESP        vfat      PARTLABEL=boot       systemd-boot + loader.conf + a UKI
#   2 nix-store  squashfs  PARTLABEL=nix-store  read-only: the "system"
# No root partition: the root is a tmpfs, /home and /var are absent (sprout
# creates them on first boot). The UKI (/EFI/Linux/sprout-appliance.efi)
# is systemd's EFI stub + the kernel + the given initrd with the test
# fixture appended (tests/qemu/fixture/uefi-initrd: the initrd's fstab and
# the unit that populates the tmpfs root) + a command line that names no
# root device and no sprout.device=: sprout must find the disk through the
# LoaderDevicePartUUID variable systemd-boot sets. The initrd builder is the
# caller's choice (--initrd), so any initrd with sprout in it can be tested.
#
# The store holds /nix/store/5eed…-sprout-appliance-system: a static
# busybox, the test guest's init (tests/qemu/guest/init) and lsblk with the
# libraries it needs. The fixture links /bin and /sbin of the root there.
#
# --fixture DIR adds one more tree to the initrd after the base fixture
# (files of the same path replace the base's): the encrypted appliance's
# crypttab and root fstab (tests/qemu/fixture/tpm2-initrd).
#
# --store-mib N makes the store partition N MiB (at least what the squashfs
# needs, the default): the demo sizes it like the article's.
#
# --pcr-key PRIVATE.pem,PUBLIC.pem signs the UKI's PCR 11 values: the
# public key goes into a .pcrpkey section, the signatures that
# systemd-measure sign makes (for the boot phases it signs by default,
# "enter-initrd" first) into .pcrsig, as ukify would. systemd-stub
# measures every section but .pcrsig into PCR 11 and hands both to the
# initrd (/.extra). Debian 12's systemd-measure computes the policy with a
# TPM: a throwaway swtpm serves it.
# --also-uki NAME=ARGS (repeatable) puts another UKI on the ESP,
# /EFI/Linux/NAME.efi, the same but with ARGS appended to its command line
# (and so another PCR 11 value), signed by the same key; loader.conf then
# names sprout-appliance.efi as the default. With --pcr-key the script
# also writes, next to the image, what the tests check the boots
# against: OUT.pcr11 ("NAME SHA256" lines, the PCR 11 value that
# systemd-measure calculate predicts for each UKI after "enter-initrd")
# and OUT.NAME.pcrsig.json (each UKI's .pcrsig).
#
# usage: build-uefi-appliance.sh --kernel VMLINUZ --initrd FILE --out FILE
#            [--cmdline "…"] [--esp-mib N] [--store-mib N] [--guest-init FILE] [--fixture DIR]
#            [--pcr-key PRIVATE,PUBLIC [--also-uki NAME=ARGS]...]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
qemu_dir="$(cd "$here/.." && pwd)"
kernel="" initrd="" out="" esp_mib=200 store_mib_wanted=0 pcr_key=""
also_ukis=()
cmdline="console=ttyS0 rd.systemd.gpt_auto=0 panic=-1 no_timer_check rd.shell=0 rd.emergency=poweroff systemd.journald.forward_to_console=1"
guest_init="$qemu_dir/guest/init"
fixtures=("$qemu_dir/fixture/uefi-initrd")
stub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
bootloader=/usr/lib/systemd/boot/efi/systemd-bootx64.efi
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernel="$2"; shift 2 ;;
	--initrd) initrd="$2"; shift 2 ;;
	--out) out="$2"; shift 2 ;;
	--cmdline) cmdline="$2"; shift 2 ;;
	--esp-mib) esp_mib="$2"; shift 2 ;;
	--store-mib) store_mib_wanted="$2"; shift 2 ;;
	--guest-init) guest_init="$2"; shift 2 ;;
	--fixture) fixtures+=("$(cd "$2" && pwd)"); shift 2 ;;
	--pcr-key) pcr_key="$2"; shift 2 ;;
	--also-uki) also_ukis+=("$2"); shift 2 ;;
	*) echo "build-uefi-appliance: unknown argument $1" >&2; exit 2 ;;
	esac
done
for v in kernel initrd out; do
	[ -n "${!v}" ] || { echo "build-uefi-appliance: --$v is required" >&2; exit 2; }
done
for tool in mkfs.vfat mcopy mmd mksquashfs sfdisk objcopy objdump busybox cpio ldd; do
	command -v "$tool" >/dev/null || { echo "build-uefi-appliance: $tool is missing (tests/qemu/scripts/deps.sh installs it)" >&2; exit 1; }
done
for f in "$stub" "$bootloader"; do
	[ -f "$f" ] || { echo "build-uefi-appliance: $f is missing (apt-get install systemd-boot-efi)" >&2; exit 1; }
done
case "$cmdline" in
*root=/* | *root=PART* | *root=UUID* | *root=LABEL* | *sprout.device=*)
	echo "build-uefi-appliance: the command line must name no root device and no sprout.device=: $cmdline" >&2; exit 2 ;;
esac
if [ -n "$pcr_key" ]; then
	for tool in swtpm /usr/lib/systemd/systemd-measure; do
		command -v "$tool" >/dev/null || { echo "build-uefi-appliance: --pcr-key needs $tool (tests/qemu/scripts/deps.sh installs it)" >&2; exit 1; }
	done
	pcr_private="${pcr_key%%,*}" pcr_public="${pcr_key#*,}"
	[ -f "$pcr_private" ] && [ -f "$pcr_public" ] || { echo "build-uefi-appliance: --pcr-key $pcr_key: need PRIVATE.pem,PUBLIC.pem" >&2; exit 2; }
elif [ ${#also_ukis[@]} -gt 0 ]; then
	echo "build-uefi-appliance: --also-uki needs --pcr-key" >&2; exit 2
fi
busybox_bin="$(command -v busybox)"
file -L "$busybox_bin" | grep -q 'statically linked' || busybox_bin=/bin/busybox
file -L "$busybox_bin" | grep -q 'statically linked' || { echo "build-uefi-appliance: need a static busybox (busybox-static)" >&2; exit 1; }

work="$(mktemp -d "${out}.work.XXXXXX")"
trap 'rm -rf "$work"' EXIT
export SOURCE_DATE_EPOCH=1700000000
mib=$((1024 * 1024))

# --- the store: the system the tmpfs root links into ------------------------
system="$work/store/5eed0000000000000000000000000000-sprout-appliance-system"
mkdir -p "$system"/{bin,sbin,lib,libexec}
cp "$busybox_bin" "$system/bin/busybox"
install -m 0755 "$guest_init" "$system/sbin/init"
# lsblk and its closure, run through its own loader (no /lib on the tmpfs root).
cp /usr/bin/lsblk "$system/libexec/lsblk"
ldd /usr/bin/lsblk | awk '/=> \// { print $3 } /^\t\/.*ld-linux/ { print $1 }' | while read -r lib; do
	cp -L "$lib" "$system/lib/"
done
loader="$(cd "$system/lib" && ls ld-linux-*.so.* | head -n 1)"
store_path="/nix/store/${system##*/}"
cat >"$system/bin/lsblk" <<EOF
#!/bin/sh
exec $store_path/lib/$loader --library-path $store_path/lib $store_path/libexec/lsblk "\$@"
EOF
chmod 0755 "$system/bin/lsblk"
for applet in $("$busybox_bin" --list); do
	[ -e "$system/bin/$applet" ] || ln -s busybox "$system/bin/$applet"
done
mksquashfs "$work/store" "$work/store.img" -quiet -noappend -all-root -b 131072 >/dev/null

# --- the UKI: stub + .osrel + .cmdline + .linux + .initrd [+ .pcrpkey .pcrsig]
# One cpio archive per fixture, appended in order: the kernel unpacks them
# one after another, a later file replacing an earlier one.
cp "$initrd" "$work/initrd"
for fixture in "${fixtures[@]}"; do
	(cd "$fixture" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc --owner 0:0 --reproducible) >>"$work/initrd"
done
cat >"$work/osrel" <<'EOF'
NAME="sprout test appliance"
ID=sprout-appliance
PRETTY_NAME="sprout test appliance (tmpfs root, squashfs store)"
EOF
# Each section goes after the stub's last one, aligned to the stub's
# section alignment (systemd's documented objcopy recipe for a UKI).
align=$((0x$(objdump -p "$stub" | awk '$1 == "SectionAlignment" { print $2 }')))
stub_end=0
while read -r size vma; do
	[ $((0x$vma + 0x$size)) -gt "$stub_end" ] && stub_end=$((0x$vma + 0x$size))
done < <(objdump -h "$stub" | awk 'NF == 7 && $1 ~ /^[0-9]+$/ { print $3, $4 }')

# sign_pcr11 CMDLINE-FILE OUT: the .pcrsig JSON for a UKI with this
# command line (systemd-measure computes the PCR 11 values the stub will
# measure, phase by phase, and signs each).
swtpm_pid=""
sign_pcr11() {
	if [ -z "$swtpm_pid" ]; then
		mkdir -p "$work/swtpm"
		for port in $(shuf -i 20000-60000 -n 20); do
			swtpm socket --tpm2 --daemon --flags not-need-init --tpmstate "dir=$work/swtpm" \
				--server "type=tcp,port=$port,bindaddr=127.0.0.1" --ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" \
				--pid "file=$work/swtpm/pid" 2>/dev/null && { swtpm_port=$port; break; }
		done
		[ -n "${swtpm_port:-}" ] || { echo "build-uefi-appliance: could not start swtpm" >&2; exit 1; }
		swtpm_pid="$(cat "$work/swtpm/pid")"
	fi
	/usr/lib/systemd/systemd-measure sign --tpm2-device="swtpm:host=127.0.0.1,port=$swtpm_port" --bank=sha256 \
		--linux="$kernel" --initrd="$work/initrd" --osrel="$work/osrel" --cmdline="$1" --pcrpkey="$pcr_public" \
		--private-key="$pcr_private" --public-key="$pcr_public" >"$2"
}
trap '[ -z "$swtpm_pid" ] || kill "$swtpm_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

# make_uki CMDLINE OUT
make_uki() {
	local offset=$stub_end section file
	local -a args=() sections=(osrel cmdline linux initrd)
	printf '%s' "$1" >"$work/cmdline"
	if [ -n "$pcr_key" ]; then
		sign_pcr11 "$work/cmdline" "$work/pcrsig"
		cp "$pcr_public" "$work/pcrpkey"
		sections+=(pcrpkey pcrsig)
		local name="${2##*/}"
		name="${name%.efi}"
		cp "$work/pcrsig" "$out.$name.pcrsig.json"
		/usr/lib/systemd/systemd-measure calculate --bank=sha256 --phase=enter-initrd \
			--linux="$kernel" --initrd="$work/initrd" --osrel="$work/osrel" --cmdline="$work/cmdline" --pcrpkey="$pcr_public" |
			sed -n "s/^11:sha256=/$name /p" >>"$out.pcr11"
	fi
	for section in "${sections[@]}"; do
		case "$section" in linux) file="$kernel" ;; *) file="$work/$section" ;; esac
		offset=$(((offset + align - 1) / align * align))
		args+=(--add-section ".$section=$file" --change-section-vma ".$section=$(printf 0x%x "$offset")")
		offset=$((offset + $(stat -c %s "$file")))
	done
	objcopy "${args[@]}" "$stub" "$2"
}
rm -f "$out.pcr11" "$out".*.pcrsig.json
make_uki "$cmdline" "$work/sprout-appliance.efi"
for uki in "${also_ukis[@]}"; do
	make_uki "$cmdline ${uki#*=}" "$work/${uki%%=*}.efi"
done

# --- the ESP -----------------------------------------------------------------
truncate -s "${esp_mib}M" "$work/esp.img"
mkfs.vfat -F 32 -n BOOT -i 5EED0001 "$work/esp.img" >/dev/null
printf 'timeout 0\neditor no\n' >"$work/loader.conf"
[ ${#also_ukis[@]} -eq 0 ] || printf 'default sprout-appliance.efi\n' >>"$work/loader.conf"
export MTOOLS_SKIP_CHECK=1
mmd -i "$work/esp.img" ::/EFI ::/EFI/BOOT ::/EFI/Linux ::/loader
mcopy -i "$work/esp.img" "$bootloader" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$work/esp.img" "$work/loader.conf" ::/loader/loader.conf
mcopy -i "$work/esp.img" "$work/sprout-appliance.efi" ::/EFI/Linux/sprout-appliance.efi
for uki in "${also_ukis[@]}"; do
	mcopy -i "$work/esp.img" "$work/${uki%%=*}.efi" "::/EFI/Linux/${uki%%=*}.efi"
done

# --- the disk ----------------------------------------------------------------
store_mib=$(( ($(stat -c %s "$work/store.img") + mib - 1) / mib ))
[ "$store_mib_wanted" -le "$store_mib" ] || store_mib=$store_mib_wanted
esp_start=1
store_start=$((esp_start + esp_mib))
end_mib=$((store_start + store_mib + 1)) # 1 MiB tail for the backup GPT
rm -f "$out"
truncate -s "${end_mib}M" "$out"
spm=$((mib / 512))
sfdisk --quiet --no-reread --no-tell-kernel "$out" <<EOF
label: gpt
label-id: 5EED0000-0000-4000-8000-0000000000EF
first-lba: $spm
start=$((esp_start * spm)), size=$((esp_mib * spm)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=5EED0001-0000-4000-8000-0000000000EF, name="boot"
start=$((store_start * spm)), size=$((store_mib * spm)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=5EED0002-0000-4000-8000-0000000000EF, name="nix-store", attrs="GUID:60"
EOF
dd if="$work/esp.img" of="$out" bs=1M seek="$esp_start" conv=notrunc,sparse status=none
dd if="$work/store.img" of="$out" bs=1M seek="$store_start" conv=notrunc,sparse status=none
sync "$out"
echo "build-uefi-appliance: $out ($(du -h --apparent-size "$out" | cut -f1); UKI $(du -h --apparent-size "$work/sprout-appliance.efi" | cut -f1), command line: $cmdline)"
