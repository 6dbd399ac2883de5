#!/bin/bash
# make soak: boot scenario (a) N times (default 50), each a fresh grown disk,
# a first boot and a no-op boot, two VMs at a time; prints
# "2N/2N boots reached root". usage: soak.sh [N] [go test flags…]
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
n="${1:-50}"
shift || true
tests/qemu/scripts/deps.sh
# A boot takes 20–60 s under TCG; allow ten minutes per run of two boots.
go test -count=1 -tags qemu -run '^TestSoak$' -v -timeout "$((n * 10 + 10))m" ./tests/qemu/ -soak="$n" "$@" 2>&1 |
	grep --line-buffered -v -E '^=== (RUN|PAUSE|CONT|NAME)'
