#!/bin/bash
# The QEMU tier (make test-qemu): installs missing Debian packages, then
# boots scenarios a (twice), c, d, e, u (UEFI) and t (UEFI + TPM2,
# an encrypted /var; three boots), then the
# damaged-GPT boots (tests/qemu/doc.go). SPROUT_BIN selects a prebuilt
# sprout (default: a static build of ./cmd/sprout). Extra arguments go to
# go test (e.g. -boot-timeout=8m).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
tests/qemu/scripts/deps.sh
go test -count=1 -tags qemu -run '^TestQEMU$' -v -timeout 40m ./tests/qemu/ "$@" 2>&1 | grep --line-buffered -v -E '^=== (RUN|PAUSE|CONT|NAME)'
