#!/bin/bash
# Checks the NixOS module without nixpkgs (it cannot be fetched here): it
# is evaluated against stand-ins (check.nix) and what it defines is
# compared with
#   - systemd-units/sprout.service, field by field (Environment= too), and
#     the command line the unit runs, with the device, empty, discard and
#     --compat= settings;
#   - what `sprout --initrd-needs` (the real parser and declarations) says
#     the same rendered definitions need: the initrd's packages, store
#     paths and kernel modules;
#   - the refusals it must make at evaluation time, and the build-time
#     parser run over its definitions directory.
# Each comparison is also run once against a wrong answer, which it must
# reject. Needs nix-instantiate (nix-bin), jq and a built bin/sprout.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
unit="$repo/systemd-units/sprout.service"
sprout="${SPROUT_BIN:-$repo/bin/sprout}"
command -v nix-instantiate >/dev/null || { echo "nixos check: nix-instantiate is missing (apt-get install nix-bin)" >&2; exit 1; }
command -v jq >/dev/null || { echo "nixos check: jq is missing" >&2; exit 1; }
[ -x "$sprout" ] || { echo "nixos check: $sprout is missing (make build)" >&2; exit 1; }
export NIX_STATE_DIR="${TMPDIR:-/tmp}/sprout-nix-state" NIX_CONF_DIR="${TMPDIR:-/tmp}/sprout-nix-conf"
mkdir -p "$NIX_CONF_DIR"
nix-instantiate --parse "$here/sprout.nix" >/dev/null 2> >(grep -v "build-users-group" >&2)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# eval ARGS...: the module's definitions under check.nix's stand-ins
# (always with one argument, so that check.nix's function is called).
nixdir="$here"
eval_json() {
	nix-instantiate --eval --strict --json "$nixdir/check.nix" --arg discard true "$@" 2>"$work/eval.err" ||
		{ grep -v build-users-group "$work/eval.err" >&2; return 1; }
}
seed='{"home":{"Type":"home","Label":"home","Format":"ext4","Weight":2000},"var":{"Type":"var","Label":"var","Format":"ext4","Weight":1000}}'

fail=0 checks=0
bad() { echo "nixos check: $*"; fail=1; }
# same WHAT WANT GOT: a check that passes when WANT equals GOT.
same() {
	checks=$((checks + 1))
	[ "$2" = "$3" ] || { bad "$1:"; diff <(echo "$2") <(echo "$3") | sed 's/^/    /' || true; }
}
# rejects WHAT CMD...: CMD, a comparison, must fail on a wrong answer.
rejects() {
	if ("$@") >/dev/null 2>&1; then bad "self-test: $1 accepted a wrong answer"; fi
}

# --- the unit, field by field ----------------------------------------------
# unit_json FILE: { Section: { Key: [values] } } of a unit file.
unit_json() {
	awk '/^[[:space:]]*([#;]|$)/ { next }
		/^\[.*\][[:space:]]*$/ { sub(/^\[/, ""); sub(/\][[:space:]]*$/, ""); section = $0; next }
		{ i = index($0, "="); print section "\t" substr($0, 1, i - 1) "\t" substr($0, i + 1) }' "$1" |
		jq -R -n '[inputs | split("\t")] | reduce .[] as [$s, $k, $v] ({}; .[$s][$k] += [$v])'
}
# nix_unit JSON: the same shape, from the module's service (ExecStart out).
nix_unit() {
	jq '{Unit: ((.unitConfig | map_values(if type == "array" then . else [.] end)) + {Description: [.description]}),
		Service: (.serviceConfig | del(.ExecStart) | map_values(if type == "array" then . else [.] end)),
		Install: {WantedBy: [.wantedBy | join(" ")]}}' <<<"$1"
}
unit_fields() { # WHAT UNITFILE NIXJSON
	same "$1" "$(unit_json "$2" | jq -S 'del(.Service.ExecStart)')" "$(nix_unit "$3" | jq -S .)"
}
auto="$(eval_json --argstr partitions "$seed")"
unit_fields "the unit's fields (sprout.service vs the module)" "$unit" "$auto"
grep -v '^Environment=GOMAXPROCS' "$unit" >"$work/no-gomaxprocs.service"
rejects "the unit's fields without GOMAXPROCS=1" same x "$(unit_json "$work/no-gomaxprocs.service" | jq -S 'del(.Service.ExecStart)')" "$(nix_unit "$auto" | jq -S .)"

# The command line: the unit's, with the package's binary and the pin.
# The pin (--compat=) exists only where the binary takes it: needs.json
# then has the range. Without it, the module must not pin, and the pin is
# checked against a copy of the module whose needs.json has a range.
unit_args="$(sed -n 's/^ExecStart=//p' "$unit" | sed 's|^/usr/bin/sprout||')"
quote() { for w in "$@"; do printf "'%s' " "$w"; done | sed 's/ $//'; }
if ! jq -e .compat "$here/needs.json" >/dev/null; then
	same "ExecStart (no device; a binary without --compat=: no pin)" "$(quote /nix/store/sprout/bin/sprout $unit_args)" "$(jq -r .serviceConfig.ExecStart <<<"$auto")"
	pin_note="; the --compat= pin against a needs.json with a range (this binary takes no --compat= yet)"
	mkdir -p "$work/copy/initrd/nixos" "$work/copy/systemd-units" "$work/copy/nix"
	cp "$here/sprout.nix" "$here/check.nix" "$work/copy/initrd/nixos/"
	cp "$unit" "$work/copy/systemd-units/"
	cp "$repo/nix/package.nix" "$work/copy/nix/"
	jq '. + {compat: {oldest: 252, newest: 262, default: 262}}' "$here/needs.json" >"$work/copy/initrd/nixos/needs.json"
	nixdir="$work/copy/initrd/nixos"
	auto="$(eval_json --argstr partitions "$seed")"
fi
same "ExecStart (no device; systemd 257.9)" "$(quote /nix/store/sprout/bin/sprout $unit_args --compat=257)" "$(jq -r .serviceConfig.ExecStart <<<"$auto")"
fixed="$(eval_json --argstr partitions "$seed" --argstr device /dev/sda --argstr empty force --arg discard false)"
same "ExecStart (device /dev/sda, empty force, discard off)" \
	"$(quote /nix/store/sprout/bin/sprout $(tr ' ' '\n' <<<"$unit_args" | grep -v '^--wait-for-disk=') --compat=257 --empty=force --discard=no /dev/sda)" \
	"$(jq -r .serviceConfig.ExecStart <<<"$fixed")"
same "After and Wants (device set)" "$(jq -c '[.unitConfig.After, .unitConfig.Wants] | map(.[-1])' <<<"$fixed")" '["dev-sda.device","dev-sda.device"]'

# --- the pin: --compat= from config.systemd.package.version -----------------
pin() { # WHAT WANT ARGS...: the --compat= of ExecStart ("" for none)
	local what=$1 want=$2 j
	shift 2
	j="$(eval_json --argstr partitions "$seed" "$@")"
	same "$what" "$want" "$(jq -r '.serviceConfig.ExecStart' <<<"$j" | grep -o -- "--compat=[0-9]*" || true)"
}
oldest="$(jq .compat.oldest "$nixdir/needs.json")" newest="$(jq .compat.newest "$nixdir/needs.json")"
pin "--compat= for systemd 257.9" --compat=257 --argstr systemdVersion 257.9
pin "--compat= for systemd $oldest" "--compat=$oldest" --argstr systemdVersion "$oldest"
pin "--compat= for systemd 250 (below $oldest)" "--compat=$oldest" --argstr systemdVersion 250
grep -q "warning: boot.initrd.sprout: systemd 250 is outside" "$work/eval.err" || bad "systemd 250: no evaluation warning"
pin "--compat= for systemd $((newest + 1)).1 (above $newest)" "--compat=$newest" --argstr systemdVersion "$((newest + 1)).1"
grep -q "warning: boot.initrd.sprout: systemd $((newest + 1)) is outside" "$work/eval.err" || bad "systemd $((newest + 1)): no evaluation warning"
pin "--compat= set by the user" --compat=255 --argstr compat 255
pin "no --compat= when set to null" "" --argstr compat null
nixdir="$here"

# --- what goes into the initrd: the binary's answer -------------------------
# needs_case WHAT PARTITIONS: the module's packages, store paths and
# modules equal what `sprout --initrd-needs` says the module's rendered
# files need (nixpkgs attributes; systemd's items from the initrd's
# systemd); the rendered files must also parse.
expected() { # the binary's --json=short for the files → the module's shape
	jq -S --slurpfile decl <("$sprout" --initrd-needs=all --json=short) '
		def pkg: if .packages.nixpkgs == "systemd" then "systemd" else .packages.nixpkgs end;
		{initrdBin: ([.programs[] | select(.packages.nixpkgs != "systemd") | .packages.nixpkgs] | unique),
		 storePaths: (["/nix/store/sprout/bin/sprout"]
			+ [.programs[] | select(.packages.nixpkgs == "systemd") | "/nix/store/systemd/bin/\(.name)"]
			+ [.libraries[] | "/nix/store/\(pkg)/lib/\(.name)"] | sort),
		 availableKernelModules: ([.modules[] | select(.optional | not) | .name] | sort)}'
}
got_needs() { jq -S '{initrdBin: (.initrdBin | sort), storePaths: (.storePaths | sort), availableKernelModules: (.availableKernelModules | sort)}' <<<"$1"; }
needs_case() {
	local what=$1 j d
	j="$(eval_json --argstr partitions "$2")"
	d="$work/defs.$checks"
	mkdir -p "$d"
	jq -r '.rendered | keys[]' <<<"$j" | while read -r name; do
		jq -j --arg n "$name" '.rendered[$n]' <<<"$j" >"$d/$name.conf"
	done
	local want
	want="$("$sprout" --initrd-needs --json=short --definitions="$d" | expected)" || { bad "$what: sprout refused the rendered definitions"; return; }
	same "$what: initrd packages, store paths, modules vs sprout --initrd-needs" "$want" "$(got_needs "$j")"
	[ -n "${3:-}" ] && same "$what: initrd packages" "$3" "$(jq -c '.initrdBin | sort' <<<"$j")"
	return 0
}
needs_case "the seed (ext4)" "$seed" '["e2fsprogs"]'
needs_case "Format=xfs only" '{"var":{"Type":"var","Format":"xfs"}}' '["xfsprogs"]'
needs_case "Format=swap only" '{"swap":{"Type":"swap","Format":"swap"}}' '[]'
needs_case "vfat, and ext4 with Encrypt=tpm2" '{"esp":{"Type":"esp","Format":"vfat"},"var":{"Type":"var","Format":"ext4","Encrypt":"tpm2"}}' '["cryptsetup","dosfstools","e2fsprogs"]'
needs_case "Encrypt=true without Format= (key-file, ext4)" '{"var":{"Type":"var","Encrypt":true}}' '["cryptsetup","e2fsprogs"]'
needs_case "Encrypt=no" '{"var":{"Type":"var","Format":"btrfs","Encrypt":"no"}}' '["btrfs-progs"]'
needs_case "Format as a list (repeated keys: the last wins)" '{"var":{"Type":"var","Format":["xfs","ext4"]}}' '["e2fsprogs"]'
rejects "the needs comparison" same x "$(jq -n '{initrdBin:["dosfstools","e2fsprogs"]}')" '{"initrdBin":["e2fsprogs"]}'

# Rendering: nixpkgs' repart module's formats.ini { listsAsDuplicateKeys = true; }.
j="$(eval_json --argstr partitions '{"var":{"Type":"var","Format":["xfs","ext4"],"Weight":1000,"FactoryReset":true}}')"
same "formats.ini arguments" '[{"listsAsDuplicateKeys":true}]' "$(jq -c '.iniArgs | unique' <<<"$j")"
same "a list as repeated keys, a boolean as true" "$(printf '[Partition]\nFactoryReset=true\nFormat=xfs\nFormat=ext4\nType=var\nWeight=1000\n')" "$(jq -j '.rendered.var' <<<"$j")"

# The build-time parser run: the definitions directory's script, run here
# with the stand-ins' store paths replaced by real files and bin/sprout,
# accepts the seed and refuses a key sprout does not implement.
build_script() { # PARTITIONS → exit status of the module's build script
	local j d
	j="$(eval_json --argstr partitions "$1")"
	d="$work/build.$RANDOM"
	mkdir -p "$d/in"
	jq -r '.rendered | keys[]' <<<"$j" | while read -r name; do
		jq -j --arg n "$name" '.rendered[$n]' <<<"$j" >"$d/in/$name.conf"
	done
	jq -r .definitionsScript <<<"$j" | sed "s|/nix/store/ini-|$d/in/|g; s|/nix/store/sprout/bin/sprout|$sprout|g" >"$d/script"
	out="$d/out" sh -e "$d/script" 2>"$d/err"
}
checks=$((checks + 1))
build_script "$seed" || bad "the definitions' build script fails on the seed: $(cat "$work"/build.*/err)"
checks=$((checks + 1))
if build_script '{"var":{"Type":"var","Format":"ext4","CopyBlocks":"auto"}}'; then
	bad "the definitions' build script accepts CopyBlocks=, which sprout refuses"
fi

# --- refused at evaluation time ----------------------------------------------
refused() { # WHAT PATTERN ARGS...: a failed assertion matches PATTERN
	local what=$1 pattern=$2 j
	shift 2
	checks=$((checks + 1))
	j="$(eval_json "$@")"
	jq -r '.failedAssertions[]' <<<"$j" | grep -q -- "$pattern" ||
		bad "$what: no failed assertion matching /$pattern/ (got: $(jq -c .failedAssertions <<<"$j"))"
}
refused "Encrypt=maybe" "Encrypt=maybe is not an encryption mode" --argstr partitions '{"v":{"Type":"var","Encrypt":"maybe"}}'
refused "a 37-byte label" "is longer than the 36 bytes" --argstr partitions '{"v":{"Type":"var","Label":"abcdefghijklmnopqrstuvwxyz01234567890"}}'
refused "empty = create" 'makes an image file' --argstr partitions "$seed" --argstr empty create --argstr device /dev/sda
refused "empty = force without a device" 'needs boot.initrd.systemd.repart.device' --argstr partitions "$seed" --argstr empty force
refused "no systemd initrd" 'needs a systemd initrd' --argstr partitions "$seed" --arg systemdInitrd false
refused "both sprout and systemd-repart" 'not both' --argstr partitions "$seed" --arg repartEnable true
# Format=squashfs is accepted (the partition may exist) with a warning.
checks=$((checks + 1))
j="$(eval_json --argstr partitions '{"s":{"Type":"linux-generic","Format":"squashfs"}}')"
jq -e '.failedAssertions == []' <<<"$j" >/dev/null || bad "Format=squashfs: refused: $(jq -c .failedAssertions <<<"$j")"
jq -r '.warnings[]' <<<"$j" | grep -q "Format=squashfs is not a file system sprout can make.*already exists" ||
	bad "Format=squashfs: no warning (got: $(jq -c .warnings <<<"$j"))"
accepted() { # WHAT ARGS...: no failed assertion
	local what=$1 j
	shift
	checks=$((checks + 1))
	j="$(eval_json "$@")"
	same "$what: failed assertions" '[]' "$(jq -c .failedAssertions <<<"$j")"
}
accepted "the seed" --argstr partitions "$seed"
accepted "Encrypt=YES, a label with a specifier" --argstr partitions '{"v":{"Type":"var","Encrypt":"YES","Label":"var-%m-%m-%m-%m-%m-%m-%m-%m-%m-%m-%m-%m"}}'
accepted "empty = force with a device" --argstr partitions "$seed" --argstr empty force --argstr device /dev/sda

[ "$fail" = 0 ] && echo "nixos check: sprout.nix parses; $checks checks against sprout.service, sprout --initrd-needs and the refusals passed (each kind also rejects a wrong answer)${pin_note:-}; evaluated against stand-ins, nothing built"
exit "$fail"
