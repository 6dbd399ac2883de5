package udevlink

import "testing"

func TestUdevEscape(t *testing.T) {
	for in, want := range map[string]string{
		"root":        "root",
		"home":        "home",
		"my root":     `my\x20root`,
		"a/b":         `a\x2fb`,
		`a\b`:         `a\x5cb`,
		"EFI-System":  "EFI-System",
		"Wurzel-ä":    "Wurzel-ä",
		"data#1@x=:+": "data#1@x=:+",
		// Not UTF-8: each bad byte is escaped, nothing is dropped.
		"x\xffy":     `x\xffy`,
		"x\xe2\x82y": `x\xe2\x82y`,
		// U+FFFD is a valid character and kept, all three bytes.
		"a\uFFFDb": "a\uFFFDb",
		// Noncharacters are escaped byte by byte, like udev does.
		"a\uFFFEb": `a\xef\xbf\xbeb`,
		"a\uFDD0b": `a\xef\xb7\x90b`,
		// A surrogate encoded in UTF-8 is invalid.
		"a\xed\xa0\x80b": `a\xed\xa0\x80b`,
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}
