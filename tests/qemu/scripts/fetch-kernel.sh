#!/bin/bash
# Fetches Debian's current amd64 kernel (the package linux-image-amd64
# points to) with apt-get download and unpacks it under DIR, reusing an
# earlier download. Prints two lines: KVER=<version> and ROOT=<dir> (the
# unpacked tree: ROOT/boot/vmlinuz-KVER, ROOT/lib/modules/KVER).
#
# usage: fetch-kernel.sh DIR
set -euo pipefail

dir="${1:?usage: fetch-kernel.sh DIR}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

find_package() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}
pkg="$(find_package)"
if [ -z "$pkg" ]; then
	echo "fetch-kernel: apt does not know linux-image-amd64; running apt-get update" >&2
	apt-get update -qq >&2 || { echo "fetch-kernel: apt-get update failed" >&2; exit 1; }
	pkg="$(find_package)"
fi
[ -n "$pkg" ] || { echo "fetch-kernel: cannot resolve linux-image-amd64 to a kernel package" >&2; exit 1; }
kver="${pkg#linux-image-}"
root="$dir/$kver"

if [ ! -f "$root/.complete" ]; then
	rm -rf "$root" "$dir/download"
	mkdir -p "$dir/download"
	# apt-get download writes to the current directory.
	(cd "$dir/download" && apt-get download "$pkg" >&2) ||
		{ echo "fetch-kernel: apt-get download $pkg failed" >&2; exit 1; }
	dpkg -x "$dir"/download/"$pkg"_*.deb "$root"
	# The package ships no module index; dracut, modprobe and busybox need one.
	depmod -b "$root" "$kver"
	rm -rf "$dir/download"
	touch "$root/.complete"
fi
[ -f "$root/boot/vmlinuz-$kver" ] || { echo "fetch-kernel: $root/boot/vmlinuz-$kver is missing" >&2; exit 1; }
echo "KVER=$kver"
echo "ROOT=$root"
