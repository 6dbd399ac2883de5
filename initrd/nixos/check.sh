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
check OnFailure "$(unit_list OnFailure)" "$(jq -r .unitConfig.OnFailure <<<"$auto")"
check OnFailureJobMode "$(unit_list OnFailureJobMode)" "$(jq -r .unitConfig.OnFailureJobMode <<<"$auto")"
check SuccessExitStatus "$(unit_list SuccessExitStatus)" "$(jq -r .serviceConfig.SuccessExitStatus <<<"$auto")"
check NotifyAccess "$(unit_list NotifyAccess)" "$(jq -r .serviceConfig.NotifyAccess <<<"$auto")"
check "the definitions" "$(printf '%s\n' home.conf var.conf)" "$(nix_list "$auto" definitions)"
check "ExecStart (device unset)" "$(sed -n 's/^ExecStart=//p' "$unit" | sed "s|/usr/bin/sprout|/nix/store/sprout/bin/sprout|; s/[^ ]*/'&'/g")" "$(jq -r .serviceConfig.ExecStart <<<"$auto")"
check "ExecStart (device set)" "'/nix/store/sprout/bin/sprout' '--dry-run=no' '/dev/sda'" "$(jq -r .serviceConfig.ExecStart <<<"$fixed")"
check "After (device set)" "$( (unit_list After; echo dev-sda.device) | sort)" "$(nix_list "$fixed" after)"
check "contents" '["/etc/repart.d"]' "$(jq -c .contents <<<"$auto")"

# Encryption support only when a definition asks for it (both directions).
enc_check() { # what, Encrypt= value or "" (none), want cryptsetup, want tpm2
	local j args=(--arg device null)
	[ -n "$2" ] && args+=(--argstr encrypt "$2")
	j="$(eval_json "${args[@]}")"
	local has_crypt has_dm has_tpm
	has_crypt="$(jq '.initrdBin | index("/nix/store/cryptsetup") != null' <<<"$j")"
	has_dm="$(jq '.availableKernelModules | index("dm_crypt") != null' <<<"$j")"
	has_tpm="$(jq '[.storePaths[] | select(test("systemd-cryptenroll|libtss2-esys"))] | length == 2' <<<"$j")"
	if [ "$has_crypt" != "$3" ] || [ "$has_dm" != "$3" ] || [ "$has_tpm" != "$4" ]; then
		echo "nixos check: $1: cryptsetup $has_crypt, dm_crypt $has_dm, TPM2 $has_tpm; want $3, $3, $4"; fail=1
	fi
}
enc_check "no Encrypt=" "" false false
enc_check "Encrypt=off" off false false
enc_check "Encrypt=key-file" key-file true false
enc_check "Encrypt=tpm2" tpm2 true true
enc_check "Encrypt=key-file+tpm2" key-file+tpm2 true true
[ "$fail" = 0 ] && echo "nixos check: sprout.nix parses and matches sprout.service; encryption support only with Encrypt= (off, key-file, tpm2, key-file+tpm2 checked)"
exit "$fail"
