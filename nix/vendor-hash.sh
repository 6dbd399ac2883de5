#!/bin/bash
# Prints the vendorHash that nix/package.nix must carry: the NAR hash
# (SRI form) of the vendor directory `go mod vendor` makes from the files
# git tracks, which is what buildGoModule's goModules derivation hashes.
# Needs Go and nix-hash (Debian: nix-bin). nix/check.sh compares it with
# the one in package.nix.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
export PATH=/usr/local/go/bin:$PATH GOFLAGS=-mod=mod GOTOOLCHAIN=local
command -v nix-hash >/dev/null || { echo "vendor-hash: nix-hash is missing (apt-get install nix-bin)" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$repo" && git ls-files -z --cached | tar --null -T - -cf -) | tar -xf - -C "$tmp"
(cd "$tmp" && go mod vendor)
hex="$(nix-hash --type sha256 "$tmp/vendor")"
printf 'sha256-%s\n' "$(printf '%s' "$hex" | sed 's/../\\x&/g' | xargs -0 printf | base64 -w0)"
