#!/bin/bash
# make deb: a Debian package from a staged `make install`, built with
# dpkg-deb (part of dpkg, on every Debian machine; no debhelper, no nfpm).
# The result installs with `apt install ./sprout_VERSION_amd64.deb`.
#
# usage: make-deb.sh --version VERSION --out DIR   (run by make deb)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
version="" out=""
while [ $# -gt 0 ]; do
	case "$1" in
	--version) version="$2"; shift 2 ;;
	--out) out="$2"; shift 2 ;;
	*) echo "make-deb: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -n "$version" ] && [ -n "$out" ] || { echo "usage: make-deb.sh --version VERSION --out DIR" >&2; exit 2; }
case "$version" in [0-9]*) ;; *) echo "make-deb: version $version must start with a digit" >&2; exit 2 ;; esac
command -v dpkg-deb >/dev/null || { echo "make-deb: dpkg-deb is missing (a Debian system's dpkg)" >&2; exit 1; }
arch="$(dpkg --print-architecture)"

mkdir -p "$out"
out="$(cd "$out" && pwd)"
stage="$(mktemp -d "$out/deb.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
root="$stage/root"

# Debian's own paths: the unit in /lib/systemd/system on Debian 12 (what
# systemd.pc says there; later releases say /usr/lib), binary in /usr/bin.
make -s -C "$repo" install DESTDIR="$root" PREFIX=/usr >/dev/null

# Debian policy: compressed man pages and changelog, a copyright file.
gzip -9n "$root"/usr/share/man/man8/*.8
doc="$root/usr/share/doc/sprout"
rm -f "$doc/LICENSE"
cat >"$doc/copyright" <<'COPYRIGHT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: sprout
Source: https://github.com/sprout-initrd/sprout

Files: *
Copyright: the sprout authors
License: Apache-2.0
 On Debian systems, the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
COPYRIGHT
printf 'sprout (%s) unstable; urgency=medium\n\n  * Built from %s with make deb.\n\n -- sprout maintainers <sprout@invalid>  %s\n' \
	"$version" "$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo source)" \
	"$(date -R -d "@$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)")" |
	gzip -9n >"$doc/changelog.gz"

mkdir -p "$root/DEBIAN"
# The static Go binary links no shared library: no shlibs Depends. sprout
# formats with mke2fs for ext2/3/4 (the common case); the other mkfs tools
# are named by the definitions and checked when the initrd is built.
# dracut-core | initramfs-tools: something must put sprout into an initrd.
# Suggests: the Debian packages of every program and library a format or
# an Encrypt= mode needs, as the packaged binary declares them (sprout
# --initrd-needs=all), less Depends and systemd (always there).
depends="e2fsprogs, util-linux"
suggests="$("$root/usr/bin/sprout" --initrd-needs=all |
	awk -F'\t' '($1 == "program" || $1 == "library") && $3 != "-" { print $3 }' |
	grep -vxF -e systemd $(printf -- '-e %s ' ${depends//,/}) | sort -u | paste -sd, - | sed 's/,/, /g')"
[ -n "$suggests" ] || { echo "make-deb: sprout --initrd-needs=all named no package" >&2; exit 1; }
cat >"$root/DEBIAN/control" <<CONTROL
Package: sprout
Version: $version
Architecture: $arch
Maintainer: sprout maintainers <sprout@invalid>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends
Recommends: dracut-core | initramfs-tools
Suggests: $suggests
Section: admin
Priority: optional
Homepage: https://github.com/sprout-initrd/sprout
Description: grow appliance disk images on first boot, in the initrd
 sprout reads systemd repart.d(5) partition definitions and, in the
 initrd before anything on the disk is mounted, moves the backup GPT to
 the end of a disk that grew and creates, formats and adds the missing
 partitions, giving the same partition table as systemd-repart 252.
 Later boots find nothing to do and write nothing.
 .
 This package has the static sprout binary, its initrd unit, a dracut
 module (enable it with dracut --add sprout) and an initramfs-tools hook
 (active when the host has repart.d definitions).
CONTROL
echo /etc/initramfs-tools/conf.d/sprout >"$root/DEBIAN/conffiles"
# New hooks should reach the initramfs on the next update, as other
# packages with initramfs-tools hooks do.
echo "activate-noawait update-initramfs" >"$root/DEBIAN/triggers"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"

deb="$out/sprout_${version}_${arch}.deb"
rm -f "$out"/sprout_*_"$arch".deb
SOURCE_DATE_EPOCH="$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)" \
	dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "make-deb: $deb"
