#!/bin/bash
# Checks the Nix files without nixpkgs (it cannot be fetched here): every
# .nix file parses; package.nix, flake.nix and vm-test.nix evaluated
# against stand-ins (check.nix) define what they should; the VM test's
# Python parses; and package.nix's vendorHash is the hash of what
# `go mod vendor` makes from this tree now. Needs nix-bin, jq, python3, Go.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
for tool in nix-instantiate nix-hash jq python3; do
	command -v "$tool" >/dev/null || { echo "nix check: $tool is missing (scripts/deps.sh installs it)" >&2; exit 1; }
done
export NIX_STATE_DIR="${TMPDIR:-/tmp}/sprout-nix-state" NIX_CONF_DIR="${TMPDIR:-/tmp}/sprout-nix-conf"
mkdir -p "$NIX_CONF_DIR"
quiet() { "$@" 2> >(grep -v "build-users-group" >&2); }

fail=0
files=()
while IFS= read -r -d '' f; do files+=("$f"); done < <(cd "$repo" && git ls-files -z --cached --others --exclude-standard '*.nix')
for f in "${files[@]}"; do
	quiet nix-instantiate --parse "$repo/$f" >/dev/null || { echo "nix check: $f does not parse"; fail=1; }
done

got="$(quiet nix-instantiate --eval --strict --json "$here/check.nix")"
check() { # what, want, jq path
	local have
	have="$(jq -c "$3" <<<"$got")"
	if [ "$have" != "$2" ]; then
		echo "nix check: $1: got $have, want $2"
		fail=1
	fi
}
check "package name" '"sprout"' .package.pname
check "package builder" '"buildGoModule"' .package.builder
check "static (CGO_ENABLED)" '"0"' .package.cgo
check "built package" '["cmd/sprout"]' .package.subPackages
check "man pages rendered and installed" true .package.manPages
check "flake packages" '["default","sprout"]' .flake.packages
check "flake default is sprout" true .flake.sproutIsDefault
check "flake nixosModules.default imports" '["sprout.nix"]' .flake.nixosModule
check "version (nixpkgs' 0-unstable-YYYY-MM-DD, the flake source's date)" '"0-unstable-2026-12-07"' .package.version
check "the flake module's package version" '"0-unstable-2026-12-07"' .flake.modulePackageVersion
check "package.nix's default version (date unknown)" '"0-unstable-1970-01-01"' .packageDefaultVersion
check "package.nix refuses a version not in that form" true .packageRefusesOtherVersions
check "flake checks" '["seed-article"]' .flake.checks
check "the NixOS module's default package" '"sprout"' .moduleDefaultPackage
check "VM test imports" '["image-based-appliance.nix","repart.nix","nixosModules.default"]' .vmTest.imports
check "VM test enables sprout in a systemd initrd" true .vmTest.sprout
check "VM test partitions (the article's inflate.nix)" \
	'{"home":{"Format":"ext4","Label":"home","Type":"home","Weight":2000},"var":{"Format":"ext4","Label":"var","Type":"var","Weight":1000}}' \
	.vmTest.partitions
check "VM test file systems (filesystems.nix)" '["/","/boot","/home","/nix/store","/var"]' .vmTest.fileSystems
check "VM test image (ESP + store)" '["esp","nix-store"]' .vmTest.imagePartitions
check "VM test grows the disk by 10 GiB" true .vmTest.grows10G
check "VM test checks the no-op boot" true .vmTest.checksNoChanges
script="$(mktemp --suffix=.py)"
trap 'rm -f "$script"' EXIT
jq -r .vmTest.script <<<"$got" >"$script"
python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read())' "$script" ||
	{ echo "nix check: the VM test's Python does not parse"; fail=1; }

have="$(jq -r .package.vendorHash <<<"$got")"
want="$("$here/vendor-hash.sh")"
if [ "$have" != "$want" ]; then
	echo "nix check: nix/package.nix has vendorHash $have, but go mod vendor gives $want now (nix/vendor-hash.sh)"
	fail=1
fi

[ "$fail" = 0 ] && echo "nix check: ${#files[@]} .nix files parse; package (vendorHash $want), flake outputs and the VM test evaluate as expected against stand-ins (nothing built)"
exit "$fail"
