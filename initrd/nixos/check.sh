#!/bin/bash
# Checks the NixOS module without nixpkgs: it must parse, and evaluated
# against stand-ins (check.nix) its unit must be ordered exactly like
# systemd-units/sprout.service. Needs nix-instantiate (apt-get install nix-bin).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
unit="$here/../../systemd-units/sprout.service"
command -v nix-instantiate >/dev/null || { echo "nixos check: nix-instantiate is missing (apt-get install nix-bin)" >&2; exit 1; }
command -v jq >/dev/null || { echo "nixos check: jq is missing" >&2; exit 1; }
export NIX_STATE_DIR="${TMPDIR:-/tmp}/sprout-nix-state" NIX_CONF_DIR="${TMPDIR:-/tmp}/sprout-nix-conf"
mkdir -p "$NIX_CONF_DIR"
nix-instantiate --parse "$here/sprout.nix" >/dev/null 2> >(grep -v "build-users-group" >&2)

eval_json() { nix-instantiate --eval --strict --json "$here/check.nix" "$@" 2>/dev/null; }
auto="$(eval_json --arg device null)"
fixed="$(eval_json --argstr device /dev/sda)"

# unit_list KEY: the unit file's values of KEY= (all lines), one per line, sorted.
unit_list() { sed -n "s/^$1=//p" "$unit" | tr ' ' '\n' | sed '/^$/d' | sort; }
nix_list() { jq -r ".$2[]" <<<"$1" | sort; }

fail=0
check() { # what, want, got
	if [ "$2" != "$3" ]; then
		echo "nixos check: $1 differs from sprout.service:"; diff <(echo "$2") <(echo "$3") || true; fail=1
	fi
}
check Before "$(unit_list Before)" "$(nix_list "$auto" before)"
check After "$(unit_list After)" "$(nix_list "$auto" after)"
check Wants "$(unit_list Wants)" "$(nix_list "$auto" wants)"
check Conflicts "$(unit_list Conflicts)" "$(nix_list "$auto" conflicts)"
check WantedBy "$(unit_list WantedBy)" "$(nix_list "$auto" wantedBy)"
check SuccessExitStatus "$(unit_list SuccessExitStatus)" "$(jq -r .serviceConfig.SuccessExitStatus <<<"$auto")"
check "the definitions" "$(printf '%s\n' home.conf var.conf)" "$(nix_list "$auto" definitions)"
check "ExecStart (device unset)" "$(sed -n 's/^ExecStart=//p' "$unit" | sed "s|/usr/bin/sprout|/nix/store/sprout/bin/sprout|; s/[^ ]*/'&'/g")" "$(jq -r .serviceConfig.ExecStart <<<"$auto")"
check "ExecStart (device set)" "'/nix/store/sprout/bin/sprout' '--dry-run=no' '/dev/sda'" "$(jq -r .serviceConfig.ExecStart <<<"$fixed")"
check "After (device set)" "$( (unit_list After; echo dev-sda.device) | sort)" "$(nix_list "$fixed" after)"
check "contents" '["/etc/repart.d"]' "$(jq -c .contents <<<"$auto")"
[ "$fail" = 0 ] && echo "nixos check: sprout.nix parses and matches sprout.service"
exit "$fail"
