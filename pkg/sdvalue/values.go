// Package sdvalue reads systemd's value syntax — booleans, integers, byte
// sizes and % specifiers — exactly as systemd-repart 252 reads them in
// repart.d files and on its command line, so every reader of a systemd
// value in sprout (the repart.d parser, the flags, the kernel command line,
// EFI variables) accepts the same words. It does no I/O.
//
// Every rule was checked against the installed binary (the repart.d
// parser's oracle tests, over the cases in sdvaluetest).
package sdvalue

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// The reasons a number or size is refused (wrapped by ParseSize).
var (
	ErrSyntax = errors.New("invalid syntax")
	ErrRange  = errors.New("out of range")
)

// ParseBool reads the words systemd's boolean settings, flags and kernel
// command-line switches accept, in any case: 1 yes y true t on / 0 no n
// false f off. Anything else is an error; the caller names the setting
// and its value.
func ParseBool(s string) (bool, error) {
	s = strings.ToLower(s)
	switch {
	case slices.Contains(trueWords, s):
		return true, nil
	case slices.Contains(falseWords, s):
		return false, nil
	}
	return false, errNotBoolean
}

var (
	trueWords  = []string{"1", "yes", "y", "true", "t", "on"}
	falseWords = []string{"0", "no", "n", "false", "f", "off"}
)

// BoolWords returns the words ParseBool reads as true and as false, in
// lower case (the NixOS module reads Encrypt='s booleans with them:
// sprout --initrd-needs=all).
func BoolWords() (yes, no []string) { return slices.Clone(trueWords), slices.Clone(falseWords) }

var errNotBoolean = errors.New("not a boolean (use yes/no, true/false, on/off or 1/0)")

// cNumber is the result of a C strtoull/strtoll-style scan: a sign and the
// magnitude.
type cNumber struct {
	neg bool
	mag uint64
}

// scanInteger parses an integer the way systemd's safe_atou/safe_atoi
// family does: an optional "0b"/"0B" (binary) or "0o"/"0O" (octal) prefix
// at the very start, after which the rest is read like C's strtoul with
// that base; without such a prefix, like strtoul with base 0: blanks, an
// optional sign, then "0x" hex, a leading "0" octal, or decimal. The whole
// string must be consumed. So "010" is 8, "0x10" 16, "0b11" 3, "08" and
// "1_000" are invalid.
func scanInteger(s string) (cNumber, error) {
	base := 0
	if len(s) >= 2 && s[0] == '0' {
		switch s[1] {
		case 'b', 'B':
			base, s = 2, s[2:]
		case 'o', 'O':
			base, s = 8, s[2:]
		}
	}
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	var n cNumber
	if s != "" && (s[0] == '+' || s[0] == '-') {
		n.neg = s[0] == '-'
		s = s[1:]
	}
	if base == 0 {
		switch {
		case len(s) >= 3 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && digitValue(s[2]) < 16:
			base, s = 16, s[2:]
		case len(s) >= 1 && s[0] == '0':
			base = 8
		default:
			base = 10
		}
	}
	if s == "" {
		return n, ErrSyntax
	}
	overflow := false
	for i := 0; i < len(s); i++ {
		d := digitValue(s[i])
		if d >= base {
			return n, ErrSyntax
		}
		if n.mag > (math.MaxUint64-uint64(d))/uint64(base) {
			overflow = true
		}
		n.mag = n.mag*uint64(base) + uint64(d)
	}
	if overflow {
		return n, ErrRange
	}
	return n, nil
}

func digitValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	}
	return 99
}

// Unsigned parses an unsigned integer of the given bit size (scanInteger's
// syntax). A minus sign is allowed only on zero ("-0"), as in systemd.
func Unsigned(s string, bits int) (uint64, error) {
	n, err := scanInteger(s)
	if err != nil {
		return 0, err
	}
	if n.neg && n.mag != 0 {
		return 0, ErrRange
	}
	if bits < 64 && n.mag > uint64(1)<<bits-1 {
		return 0, ErrRange
	}
	return n.mag, nil
}

// Signed parses a signed integer of the given bit size (scanInteger's
// syntax).
func Signed(s string, bits int) (int64, error) {
	n, err := scanInteger(s)
	if err != nil {
		return 0, err
	}
	limit := uint64(1) << (bits - 1) // |min|; max is limit-1
	if n.neg {
		if n.mag > limit {
			return 0, ErrRange
		}
		return -int64(n.mag-1) - 1, nil
	}
	if n.mag > limit-1 {
		return 0, ErrRange
	}
	return int64(n.mag), nil
}

// sizeSuffixes are the base-1024 size suffixes, largest first. Within one
// value the components must use strictly decreasing suffixes ("1G512M").
var sizeSuffixes = [...]struct {
	suffix string
	factor uint64
}{
	{"E", 1 << 60},
	{"P", 1 << 50},
	{"T", 1 << 40},
	{"G", 1 << 30},
	{"M", 1 << 20},
	{"K", 1 << 10},
	{"B", 1},
	{"", 1},
}

// Size parses a byte size like systemd's parse_size with base 1024, as
// used by SizeMinBytes= and friends in systemd-repart 252, and returns
// ErrSyntax or ErrRange for a value it refuses:
//   - a value is one or more components "N[.F][ ]SUFFIX", blanks allowed
//     before a component and before its suffix; suffixes B K M G T P E
//     (upper case only) or none; later components must use smaller
//     suffixes ("1G 512M", "1M1" are fine, "1K1M" and "1K1K" are not);
//   - N is decimal (a leading "+" is accepted, leading zeros do not mean
//     octal); any "-" is out of range, even "-0";
//   - the fraction F is read as an integer, turned into a float64 and
//     divided by 10 once per digit, multiplied by the suffix factor and
//     truncated: "1.05M" is 1101004, "0.1E" is 115292150460684704;
//   - a component overflows when N plus one (when F > 0) exceeds
//     2^64-1 divided by the factor, so "15E" is accepted and "15.5E" is out
//     of range although it would fit; the sum must fit in 64 bits.
func Size(s string) (uint64, error) {
	const blanks = " \t\n\r"
	var total uint64
	next := 0 // first suffix index the next component may use
	p := s
	for {
		p = strings.TrimLeft(p, blanks)
		// Integer part, like strtoull(p, 10).
		q := strings.TrimLeft(p, " \t\n\v\f\r")
		neg := false
		if q != "" && (q[0] == '+' || q[0] == '-') {
			neg = q[0] == '-'
			q = q[1:]
		}
		digits := leadingDigits(q)
		if digits == 0 {
			return 0, ErrSyntax
		}
		whole, ok := decimal(q[:digits])
		if !ok {
			return 0, ErrRange
		}
		if neg {
			return 0, ErrRange
		}
		rest := q[digits:]

		frac := 0.0
		if strings.HasPrefix(rest, ".") {
			rest = rest[1:]
			if n := leadingDigits(rest); n > 0 {
				f, ok := decimal(rest[:n])
				if !ok {
					return 0, ErrRange
				}
				frac = float64(f)
				for range n {
					frac /= 10
				}
				rest = rest[n:]
			}
		}
		rest = strings.TrimLeft(rest, blanks)

		i := next
		for i < len(sizeSuffixes) && !strings.HasPrefix(rest, sizeSuffixes[i].suffix) {
			i++
		}
		if i == len(sizeSuffixes) {
			return 0, ErrSyntax
		}
		factor := sizeSuffixes[i].factor
		var roundUp uint64
		if frac > 0 {
			roundUp = 1
		}
		// whole+roundUp wraps for whole == 2^64-1, as it does in systemd.
		if whole+roundUp > math.MaxUint64/factor {
			return 0, ErrRange
		}
		part := whole*factor + uint64(frac*float64(factor))
		if part > math.MaxUint64-total {
			return 0, ErrRange
		}
		total += part
		p = rest[len(sizeSuffixes[i].suffix):]
		next = i + 1
		if p == "" {
			return total, nil
		}
	}
}

// ParseSize parses a byte size in systemd's base-1024 syntax ("1.5G",
// "1G 512M") exactly as systemd-repart 252 parses its size settings and
// --size=; see Size for the rules. It does not round. Its error names the
// value and the syntax.
func ParseSize(s string) (uint64, error) {
	n, err := Size(s)
	if err != nil {
		return 0, fmt.Errorf("invalid size %s: %w (use bytes or a number with suffix B, K, M, G, T, P or E, base 1024)", Quote(s), err)
	}
	return n, nil
}

func leadingDigits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// decimal converts a string of ASCII digits, reporting overflow.
func decimal(s string) (uint64, bool) {
	var v uint64
	for i := 0; i < len(s); i++ {
		d := uint64(s[i] - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}
