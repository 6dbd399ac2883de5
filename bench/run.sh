#!/usr/bin/env bash
# `make bench`: sprout and systemd-repart 252 side by side (docs/benchmarks.md).
# Installs the Debian packages it needs when they are missing, builds
# bin/sprout and the harness, and runs the harness, which prints the table
# and writes it to build/bench/results.md. RECORD=1 also copies the table
# into docs/benchmarks.md. Other variables: BENCH_SCALE (run-count
# multiplier, default 1), BENCH_DIR (where the sparse images live; default
# /dev/shm), BENCH_ONLY (sections, for development). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "bench: run as root (systemd-repart formats image files through loop devices)" >&2
	exit 1
fi

# command → Debian package, installed only when the command is missing.
need=()
for pair in /usr/bin/time:time strace:strace dracut:dracut-core sfdisk:fdisk \
	mke2fs:e2fsprogs mkfs.vfat:dosfstools blkid:util-linux cp:coreutils \
	systemd-repart:systemd ldd:libc-bin perf:linux-perf; do
	cmd=${pair%%:*} pkg=${pair#*:}
	command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
	echo "bench: installing ${need[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

GO=${GO:-go}
export GO
make --no-print-directory build >&2
mkdir -p build/bench
CGO_ENABLED=0 "$GO" build -o build/bench/sproutbench ./bench

args=(-sprout bin/sprout -repart "$(command -v systemd-repart)" -repo . -out build/bench/results.md
	-scale "${BENCH_SCALE:-1}" -command "${BENCH_COMMAND:-make bench}")
[ -n "${BENCH_DIR:-}" ] && args+=(-dir "$BENCH_DIR")
[ -n "${BENCH_ONLY:-}" ] && args+=(-only "$BENCH_ONLY")
[ "${RECORD:-0}" = 1 ] && args+=(-record docs/benchmarks.md)
exec build/bench/sproutbench "${args[@]}"
