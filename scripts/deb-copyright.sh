#!/bin/bash
# Writes the Debian package's copyright file (machine-readable format) to
# stdout: sprout's own, and the notices of what the static binary links in
# — the Go standard library and each Go module `go list -deps` names —
# with their license texts, since the BSD and MIT licenses ask binary
# distributions to carry them. A license it cannot name stops the build
# rather than going out unnamed.
#
# usage: deb-copyright.sh REPO YEARS        (run by make-deb.sh)
set -euo pipefail
repo="$1" years="$2"
go="${GO:-go}"
command -v "$go" >/dev/null || go=/usr/local/go/bin/go

# license_name FILE: the short name of the license in FILE.
license_name() {
	if grep -q 'Apache License' "$1" && grep -q 'Version 2\.0' "$1"; then
		echo Apache-2.0
	elif grep -q 'Redistribution and use in source and binary forms' "$1"; then
		if grep -q 'Neither the name' "$1"; then echo BSD-3-clause; else echo BSD-2-clause; fi
	elif grep -q 'Permission is hereby granted, free of charge' "$1"; then
		echo Expat
	else
		echo "deb-copyright: cannot tell the license in $1" >&2
		return 1
	fi
}

# notices FILE...: the copyright notices of the files ("Copyright 2009 X"
# and "Copyright (c) 2009 X" give "2009 X"; not the Apache license's
# "[yyyy]" template), one per line, indented as a continuation of a
# Copyright: field after the first.
notices() {
	grep -h -E '^[[:space:]]*(Copyright|©)[[:space:]]*(\([cC]\)|©)?[[:space:]]*[0-9]' "$@" 2>/dev/null |
		sed -E 's/^[[:space:]]*(Copyright|©)[[:space:]]*(\([cC]\)|©)?[[:space:]]*//' | awk '!seen[$0]++' | sed '1!s/^/ /'
}

# text FILE: FILE as the continuation lines of a field.
text() { sed -E 's/[[:space:]]+$//; s/^$/./; s/^/ /' "$1"; }

# paragraph PATTERN COMMENT DIR: a Files: paragraph for a module's tree.
paragraph() {
	local pattern=$1 comment=$2 dir=$3 license name holders
	license=""
	for f in "$dir"/LICENSE* "$dir"/COPYING*; do
		[ -f "$f" ] && { license=$f; break; }
	done
	[ -n "$license" ] || { echo "deb-copyright: no license file in $dir" >&2; return 1; }
	name="$(license_name "$license")"
	holders="$(notices "$license" "$dir"/NOTICE* || true)"
	printf '\nFiles: %s\nCopyright: %s\nComment: %s\nLicense: %s\n' \
		"$pattern" "${holders:-the authors of $comment (no notice in its license file)}" "$comment" "$name"
	# Apache-2.0 is in /usr/share/common-licenses (the paragraph below).
	[ "$name" = Apache-2.0 ] || text "$license"
}

cat <<HEAD
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: sprout
Upstream-Contact: https://github.com/sprout-initrd/sprout/issues
Source: https://github.com/sprout-initrd/sprout
Comment: usr/bin/sprout is a static Go binary. Besides sprout's own code
 it contains the Go standard library and the Go modules below, each under
 its license; the Files: patterns name them as they are laid out in Go's
 source tree (GOROOT/src) and in \`go mod vendor\` (vendor/).

Files: *
Copyright: $years the sprout authors
License: Apache-2.0
HEAD

goroot="$("$go" env GOROOT)"
paragraph 'GOROOT/src/*' "the Go standard library, $("$go" env GOVERSION)" "$goroot"
cd "$repo"
"$go" list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}' ./cmd/sprout |
	sort -u | while read -r path version dir; do
	paragraph "vendor/$path/*" "the Go module $path $version" "$dir"
done

cat <<'TAIL'

License: Apache-2.0
 On Debian systems, the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
TAIL
