#!/bin/bash
# Installs the Debian 12 packages the QEMU tier and `make demo` need, if
# any are missing (apt-get; as root, or through sudo).
#
# usage: deps.sh [--demo]   (--demo adds parted, for the article's "parted p")
set -euo pipefail

# ovmf, systemd-boot-efi, mtools and binutils build and boot the UEFI
# appliance (firmware, systemd-boot and its EFI stub, the vfat ESP filled
# without mounting, objcopy for the UKI).
packages=(qemu-system-x86 qemu-utils dracut-core initramfs-tools-core busybox-static squashfs-tools
	dosfstools e2fsprogs fdisk util-linux mount cpio file kmod
	ovmf systemd-boot-efi mtools binutils)
[ "${1:-}" = --demo ] && packages+=(parted)

missing=()
for p in "${packages[@]}"; do
	status="$(dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null || true)"
	[ "$status" = installed ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
	sudo=(sudo)
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
	"${sudo[@]}" apt-get update -qq >&2
	"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
