#!/bin/bash
# Installs the Debian 12 packages a command needs (scripts/packages), as
# root or through sudo. make test, make demo and .ci/run all go through
# here: there is no other install step. On a fresh machine apt's lists may
# be empty; then it runs apt-get update first.
#
# For `test` it also builds the systemd-repart oracle chroots
# (scripts/oracles.sh: once, cached under /var/cache/sprout).
#
# usage: deps.sh [test|demo]          (default: test)
#        deps.sh --list [GROUP]          print the packages, install nothing
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

list_only=0
if [ "${1:-}" = --list ]; then
	list_only=1
	shift
fi
group="${1:-test}"
mapfile -t packages < <(awk -v g="$group" '
	/^[[:space:]]*(#|$)/ { next }
	{ sub(/#.*/, ""); for (i = 2; i <= NF; i++) if ($i == g) { print $1; next } }' "$here/packages")
[ ${#packages[@]} -gt 0 ] || { echo "deps: no packages for \"$group\" in $here/packages" >&2; exit 2; }
if [ "$group" = test ]; then
	# The tiers test every format and Encrypt= mode: the Debian packages
	# their declarations name (the generated initrd/nixos/needs.json).
	mapfile -t -O "${#packages[@]}" packages < <(
		sed -n 's/^ *"debian": "\([^"]*\)",\{0,1\}$/\1/p' "$here/../initrd/nixos/needs.json")
	mapfile -t packages < <(printf '%s\n' "${packages[@]}" | awk '!seen[$0]++')
fi
if [ "$list_only" = 1 ]; then
	printf '%s\n' "${packages[@]}"
	exit 0
fi

missing=()
for p in "${packages[@]}"; do
	status="$(dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null || true)"
	[ "$status" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	sudo=()
	if [ "$(id -u)" != 0 ]; then
		command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
		sudo=(sudo)
	fi
	echo "deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	# Other apt users (unattended-upgrades, a parallel run) hold the lock
	# for a while; wait for it instead of failing.
	apt=("${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 -y -q --no-install-recommends)
	# A fresh machine (or a container image) has no package lists at all.
	if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
		"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
	fi
	if ! "${apt[@]}" install "${missing[@]}" >&2; then
		# Stale lists name versions the mirror no longer has.
		"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
		"${apt[@]}" install "${missing[@]}" >&2
	fi
fi

# The newer systemd-repart oracles (Debian chroots, built once and cached
# under /var/cache/sprout; scripts/oracles.sh says more).
if [ "$group" = test ]; then
	sudo=()
	[ "$(id -u)" = 0 ] || sudo=(sudo)
	"${sudo[@]}" "$here/oracles.sh"
fi

# Go is not a Debian 12 package in the version go.mod asks for; say so
# here, before a build fails with a less helpful message.
go="$(command -v go || echo /usr/local/go/bin/go)"
want="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$here/../go.mod")"
if [ ! -x "$go" ]; then
	echo "deps: Go $want or later is missing: install it from https://go.dev/dl/ (to /usr/local/go) and run this again" >&2
	exit 1
fi
have="$("$go" env GOVERSION | sed 's/^go//')"
if [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -1)" != "$want" ]; then
	echo "deps: $go is Go $have; go.mod needs $want or later (https://go.dev/dl/)" >&2
	exit 1
fi
