#!/bin/bash
# Builds the systemd-repart oracles the differential tiers compare sprout
# with: Debian chroots made by debootstrap, once, cached under
# /var/cache/sprout/oracles/<suite>. scripts/deps.sh runs it for
# `make test`; tests/harness (Oracle) runs systemd-repart inside them.
#
#   bookworm-backports   Debian 12 + bookworm-backports' systemd 254: it
#            proves the rules that changed between 252 and 257 at 254
#   trixie   Debian 13: systemd 257
#   forky    Debian testing: the newest systemd Debian has (262 when written)
#
# usage: oracles.sh [SUITE...]          build what is missing (default: all three)
#        oracles.sh --rebuild SUITE...  build again (e.g. testing moved on), then swap
#        oracles.sh --list              print the cache's oracles and their versions
#
# A chroot is built in a temporary directory next to its final place and
# renamed into place only when complete (with a stamp file): a half-made
# chroot is never used. One flock serialises builders; callers that find the
# chroot already built return at once.
set -euo pipefail

cache="${SPROUT_ORACLE_CACHE:-/var/cache/sprout}"
oracles="$cache/oracles"
mirror="${SPROUT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
stamp=.sprout-oracle
# What each chroot holds: systemd-repart, the mkfs tools it calls, sfdisk,
# and cryptsetup for Encrypt= (systemd-repart links libcryptsetup; the
# binaries let a guest use the chroot's tools too).
include=systemd-repart,fdisk,e2fsprogs,dosfstools,xfsprogs,btrfs-progs,cryptsetup-bin,util-linux,tpm2-tools,systemd-cryptsetup
# tpm2-tools brings the tpm2-tss libraries systemd-repart loads for
# Encrypt=tpm2 (their package names differ between releases);
# systemd-cryptsetup has systemd-cryptenroll and cryptsetup's systemd-tpm2
# token plugin (in bookworm they are in systemd): the encryption tier runs
# sprout inside the chroot with that version's tools.
# recipe changes whenever what a chroot holds does: a chroot built by an
# older recipe is built again (and swapped in atomically).
recipe=3

say() { echo "oracles: $*" >&2; }

rebuild=0
case "${1:-}" in
--list)
	for d in "$oracles"/*/; do
		[ -f "$d/$stamp" ] || continue
		printf '%s\t%s\n' "$(basename "$d")" "$(sed -n 's/^version=//p' "$d/$stamp")"
	done
	exit 0
	;;
--rebuild)
	rebuild=1
	shift
	;;
esac
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(bookworm-backports trixie forky)

[ "$(id -u)" = 0 ] || { say "must run as root (debootstrap)"; exit 1; }
command -v debootstrap >/dev/null || { say "debootstrap is missing (scripts/deps.sh installs it)"; exit 1; }

mkdir -p "$oracles" "$oracles/.ns"
write_readme() {
	cat >"$cache/README" <<'EOF'
/var/cache/sprout: caches made by sprout's scripts (scripts/oracles.sh,
run by scripts/deps.sh for `make test`). Safe to delete: the next
`make test` builds it again (a few minutes, needs Debian's mirror).

oracles/<suite>/   a Debian chroot (debootstrap --variant=minbase) holding
                   systemd-repart, sfdisk, mkfs.{ext4,vfat,xfs,btrfs},
                   cryptsetup. Each has a stamp file .sprout-oracle
                   (suite, date built, `systemd-repart --version`).
                   bookworm-backports = Debian 12 + systemd 254;
                   trixie = Debian 13 (systemd 257); forky = Debian testing
                   (the newest Debian systemd; 262 when first built).
oracles/.lock      flock held while a chroot is being built.

Using one: scripts/oracle-run.sh (in the sprout repository) runs a
chroot's program in a private mount namespace: the chroot's root is an
overlay mount (systemd-repart 258+ formats in a child that remounts / as
MS_SLAVE: the root must be a mount point; the chroot itself is never
written), /dev, /proc, /sys, /tmp and every absolute path of the command
line are bound in, and everything is unmounted when the program exits.
    scripts/oracle-run.sh forky systemd-repart --version
    scripts/oracle-run.sh trixie systemd-repart --dry-run=no \
        --definitions=$PWD/defs $PWD/disk.img
In Go: tests/harness.ChrootOracle("forky").Run(...) (oracle.go).
oracles/.ns is the empty directory each namespace mounts its tmpfs on.
Debian testing moves on: `scripts/oracles.sh --rebuild forky` makes a new
one (the tiers say when its systemd is newer than sprout supports).
Do not modify a chroot in place; build another.
EOF
}

# build SUITE: debootstrap into a temporary directory, check the result,
# write the stamp, rename into place.
build() {
	local suite=$1 final="$oracles/$1" tmp script=() dist=$1 extra=()
	case "$suite" in
	forky) script=(/usr/share/debootstrap/scripts/sid) ;; # bookworm's debootstrap has no forky script
	bookworm-backports) dist=bookworm ;;
	esac
	tmp="$(mktemp -d "$oracles/.$suite.building.XXXXXX")"
	building=$tmp
	chmod 0755 "$tmp"
	local start=$SECONDS
	if [ "$suite" = bookworm-backports ]; then
		extra=(--include=fdisk,e2fsprogs,dosfstools,xfsprogs,btrfs-progs,cryptsetup-bin,util-linux,tpm2-tools)
	else
		extra=(--include="$include")
	fi
	say "building $suite in $tmp (debootstrap from $mirror)"
	if ! debootstrap --variant=minbase "${extra[@]}" "$dist" "$tmp" "$mirror" "${script[@]}" >"$tmp.log" 2>&1; then
		say "debootstrap $suite failed; last lines of its log:"
		tail -n 20 "$tmp.log" >&2
		return 1
	fi
	if [ "$suite" = bookworm-backports ]; then
		echo "deb $mirror bookworm-backports main" >"$tmp/etc/apt/sources.list.d/backports.list"
		if ! chroot "$tmp" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -t bookworm-backports systemd' >>"$tmp.log" 2>&1; then
			say "installing systemd from bookworm-backports failed; last lines of its log:"
			tail -n 20 "$tmp.log" >&2
			return 1
		fi
	fi
	rm -f "$tmp.log"
	chroot "$tmp" apt-get clean
	local version
	version="$(chroot "$tmp" systemd-repart --version | head -n 1)" || { say "$suite: systemd-repart does not run"; return 1; }
	printf 'suite=%s\nbuilt=%s\nversion=%s\nmirror=%s\nrecipe=%s\n' "$suite" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$version" "$mirror" "$recipe" >"$tmp/$stamp"
	if [ -e "$final" ]; then
		local old
		old="$(mktemp -d "$oracles/.$suite.old.XXXXXX")"
		mv "$final" "$old/"
		mv "$tmp" "$final"
		rm -rf --one-file-system "$old"
	else
		mv "$tmp" "$final"
	fi
	building=
	say "$suite ready: $version ($((SECONDS - start)) s)"
}

# A failed build leaves nothing behind (debootstrap may have left /proc
# and /sys mounted inside it); under the lock, any leftover is stale.
building=
remove_partial() {
	local d
	for d in "$@"; do
		if [ -d "$d" ]; then
			umount -R "$d/proc" "$d/sys" 2>/dev/null || true
			rm -rf --one-file-system "$d"
		fi
		rm -f "$d.log" "${d%.log}.log"
	done
}
trap 'remove_partial $building' EXIT

exec 9>"$oracles/.lock"
if ! flock -n 9; then
	say "waiting for another build of the oracles (lock $oracles/.lock)"
	flock 9
fi
remove_partial "$oracles"/.*.building.* "$oracles"/.*.old.*
write_readme
pids=()
for s in "${suites[@]}"; do
	case "$s" in
	trixie | forky | bookworm-backports) ;;
	*) say "unknown suite $s (trixie, forky, bookworm-backports)"; exit 2 ;;
	esac
	if [ "$rebuild" = 0 ] && [ -f "$oracles/$s/$stamp" ] &&
		[ "$(sed -n 's/^recipe=//p' "$oracles/$s/$stamp")" = "$recipe" ]; then
		continue
	fi
	# The chroots are built side by side: each is mostly waiting on the
	# mirror or on one dpkg, so a fresh machine is ready in about the time
	# of the slowest (trixie alone: 67 s here; all three one after the
	# other took about three times that).
	( trap 'remove_partial $building' EXIT; build "$s" ) &
	pids+=("$!")
done
failed=0
for pid in "${pids[@]}"; do
	wait "$pid" || failed=1
done
exit "$failed"
