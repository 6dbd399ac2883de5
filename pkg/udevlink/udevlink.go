// Package udevlink is udev's encoding of names in its /dev/disk/by-* links,
// which the links a plan waits for (pkg/plan) and the links discovery
// resolves (pkg/discover) must share. It does no I/O.
package udevlink

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Escape encodes a name the way udev does for its /dev/disk/by-*
// links: a valid multibyte UTF-8 character is kept as it is (U+FFFD too,
// which a GPT label with a lone UTF-16 surrogate decodes to), except the
// Unicode noncharacters udev rejects; an ASCII letter, digit or one of
// #+-.:=@_ is kept; every other byte becomes \xNN.
func Escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case n > 1 && udevValidRune(r): // utf8 reports invalid input as n == 1
			b.WriteString(s[i : i+n])
		case n == 1 && udevSafe(s[i]):
			b.WriteByte(s[i])
		default:
			for _, c := range []byte(s[i : i+n]) {
				fmt.Fprintf(&b, `\x%02x`, c)
			}
		}
		i += n
	}
	return b.String()
}

func udevSafe(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || strings.IndexByte("#+-.:=@_", c) >= 0
}

// udevValidRune: udev treats the noncharacters U+FDD0–U+FDEF and
// U+xFFFE/U+xFFFF as invalid and escapes their bytes. (Go's decoder
// already rejects surrogates, overlong forms and values past U+10FFFF.)
func udevValidRune(r rune) bool {
	return !(r >= 0xFDD0 && r <= 0xFDEF) && r&0xFFFE != 0xFFFE
}
