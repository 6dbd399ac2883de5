#!/bin/bash
# Runs a program of an oracle chroot (scripts/oracles.sh) — usually its
# systemd-repart — on the host's files and devices, without changing the
# chroot or leaving a mount behind.
#
# usage: oracle-run.sh SUITE|DIR [--bind PATH]... [--] PROGRAM [ARG...]
#   e.g. oracle-run.sh forky systemd-repart --dry-run=no --definitions=$PWD/defs $PWD/disk.img
#
# In a private mount namespace (unshare -m; everything is unmounted when
# the program exits, however it exits): an overlay of the chroot on a
# tmpfs becomes the root, so the root is a mount point (systemd-repart 258+
# formats in a child that remounts / as MS_SLAVE and fails otherwise) and
# nothing is written to the cache; /dev, /proc, /sys and /tmp are bound in,
# and so is every absolute path on the command line (also after --flag=;
# for a path that does not exist yet, its nearest existing directory) and every --bind PATH,
# each at its own place. PROGRAM without a slash is looked up in the
# chroot's /usr/bin, /usr/sbin.
#
# If $SPROUT_ORACLE_STARTED names a file, it is created just before the
# program is executed: tests/harness tells "the program ran and exited N"
# from "the chroot could not be set up".
set -euo pipefail

if [ "${SPROUT_ORACLE_NS:-}" != 1 ]; then
	[ "$(id -u)" = 0 ] || { echo "oracle-run: must run as root (mount namespaces)" >&2; exit 125; }
	SPROUT_ORACLE_NS=1 exec unshare --mount --propagation private "$0" "$@"
fi
unset SPROUT_ORACLE_NS

die() { echo "oracle-run: $*" >&2; exit 125; }
[ $# -ge 2 ] || die "usage: oracle-run.sh SUITE|DIR [--bind PATH]... [--] PROGRAM [ARG...]"
root=$1
shift
case "$root" in
*/*) ;;
*) root="${SPROUT_ORACLE_CACHE:-/var/cache/sprout}/oracles/$root" ;;
esac
[ -f "$root/.sprout-oracle" ] || die "$root is not a complete oracle chroot (scripts/oracles.sh builds them)"

binds=()
while [ $# -gt 0 ]; do
	case "$1" in
	--bind) binds+=("$2"); shift 2 ;;
	--) shift; break ;;
	*) break ;;
	esac
done
[ $# -ge 1 ] || die "no program given"
for a in "${@:2}"; do
	case "$a" in
	--*=/*) p=${a#*=} ;;
	/*) p=$a ;;
	*) continue ;;
	esac
	while [ ! -e "$p" ]; do p=$(dirname "$p"); done
	binds+=("$p")
done

# Each namespace mounts its own tmpfs on the same empty directory of the
# cache (concurrent runs do not see each other's): nothing to clean up.
work="$(dirname "$root")/.ns"
[ -d "$work" ] || mkdir -p "$work"
mount -t tmpfs -o mode=0755 sprout-oracle "$work"
mkdir "$work/upper" "$work/work" "$work/root"
mount -t overlay sprout-oracle -o "lowerdir=$root,upperdir=$work/upper,workdir=$work/work" "$work/root"
new=$work/root
for d in /dev /proc /sys /tmp; do
	mount --rbind "$d" "$new$d"
done
mount -t tmpfs -o mode=0755 sprout-oracle-run "$new/run"
for p in "${binds[@]}"; do
	p=$(realpath -m "$p")
	case "$p" in
	/ | /dev | /dev/* | /proc | /proc/* | /sys | /sys/* | /tmp | /tmp/*) continue ;;
	esac
	if [ -d "$p" ]; then
		mkdir -p "$new$p"
	else
		mkdir -p "$(dirname "$new$p")"
		[ -e "$new$p" ] || : >"$new$p"
	fi
	mount --rbind "$p" "$new$p"
done
prog=$1
shift
if [ "${prog#*/}" = "$prog" ]; then
	for d in /usr/bin /usr/sbin /bin /sbin; do
		if [ -x "$new$d/$prog" ]; then prog=$d/$prog; break; fi
	done
fi
[ -x "$new$prog" ] || die "no program $prog in $root"
if [ -n "${SPROUT_ORACLE_STARTED:-}" ]; then
	: >"$SPROUT_ORACLE_STARTED"
fi
exec chroot "$new" "$prog" "$@"
