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

# The maintainer: whoever builds the package, as Debian's own tools take
# it (DEBFULLNAME, DEBEMAIL), else the project at its home on GitHub (a
# no-reply address: issues go to the Homepage).
maintainer="${DEBFULLNAME:-sprout maintainers} <${DEBEMAIL:-sprout-initrd@users.noreply.github.com}>"

# Debian's own paths: binary in /usr/bin, the dracut module (with the
# initrd unit inside) where dracut.pc says.
make -s -C "$repo" install DESTDIR="$root" PREFIX=/usr >/dev/null

# Debian policy 12.3: man pages, the changelog and documentation over
# 4 KiB compressed with gzip -9n; the copyright file never.
gzip -9n "$root"/usr/share/man/man8/*.8
doc="$root/usr/share/doc/sprout"
rm -f "$doc/LICENSE"
find "$doc" -type f -size +4k -exec gzip -9n {} +
when="$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)"
first_year="$(git -C "$repo" log --max-parents=0 --format=%cd --date=format:%Y 2>/dev/null | sort | sed -n 1p)"
last_year="$(date -u -d "@$when" +%Y)"
years="${first_year:-$last_year}"
[ "$years" = "$last_year" ] || years="$years-$last_year"
"$(dirname "$0")/deb-copyright.sh" "$repo" "$years" >"$doc/copyright"
printf 'sprout (%s) unstable; urgency=medium\n\n  * Built from %s with make deb.\n\n -- %s  %s\n' \
	"$version" "$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo source)" \
	"$maintainer" "$(date -R -d "@$when")" |
	gzip -9n >"$doc/changelog.gz"
# What lintian would rightly flag in another package, and why not here.
install -Dm0644 /dev/stdin "$root/usr/share/lintian/overrides/sprout" <<'OVERRIDES'
# sprout is static by design (CGO_ENABLED=0): it runs in initrds, before any library of the root exists.
sprout: statically-linked-binary [usr/bin/sprout]
# dracut runs its modules' scripts from /usr/lib/dracut/modules.d, where its own are executable too.
sprout: executable-in-usr-lib [usr/lib/dracut/modules.d/90sprout/module-setup.sh]
sprout: executable-in-usr-lib [usr/lib/dracut/modules.d/90sprout/sprout-pre-mount.sh]
OVERRIDES

mkdir -p "$root/DEBIAN"
# The static Go binary links no shared library: no shlibs Depends. The
# programs sprout runs: mke2fs for ext2/3/4 (the common case), and only
# when a definition asks, the others its declarations name; the
# integrations check them when the initrd is built. No util-linux: sprout
# runs none of its programs.
# dracut-core | initramfs-tools: something must put sprout into an initrd.
# Suggests: the Debian packages of every program and library a format or
# an Encrypt= mode needs, as the packaged binary declares them (sprout
# --initrd-needs=all), less Depends and systemd (always there).
depends="e2fsprogs"
suggests="$("$root/usr/bin/sprout" --initrd-needs=all |
	awk -F'\t' '($1 == "program" || $1 == "library") && $3 != "-" { print $3 }' |
	grep -vxF -e systemd $(printf -- '-e %s ' ${depends//,/}) | sort -u | paste -sd, - | sed 's/,/, /g')"
[ -n "$suggests" ] || { echo "make-deb: sprout --initrd-needs=all named no package" >&2; exit 1; }
cat >"$root/DEBIAN/control" <<CONTROL
Package: sprout
Version: $version
Architecture: $arch
Maintainer: $maintainer
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
 This package has the static sprout binary, a dracut module with its
 initrd unit (enable it with dracut --add sprout) and an initramfs-tools
 hook (active when the host has repart.d definitions).
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
