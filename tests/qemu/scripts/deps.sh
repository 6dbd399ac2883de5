#!/bin/bash
# Kept for the scripts that call it (run.sh, soak.sh, demo/run.sh): the
# packages come from the project's one dependency script, scripts/deps.sh.
#
# usage: deps.sh [--demo]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ "${1:-}" = --demo ]; then
	exec "$here/../../../scripts/deps.sh" demo
fi
exec "$here/../../../scripts/deps.sh" test
