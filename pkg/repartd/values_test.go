package repartd

import (
	"errors"
	"math"
	"testing"
)

// sizeCases are parse results systemd-repart 252.39 produced for
// SizeMaxBytes= (read from its "Rounded ... size N" notice or its refusal);
// TestOracleSizes re-checks them against the binary.
var sizeCases = []struct {
	in   string
	want uint64
	err  error // errSyntax or errRange; nil when valid
}{
	{"0", 0, nil},
	{"0B", 0, nil},
	{"1", 1, nil},
	{"1B", 1, nil},
	{"4096", 4096, nil},
	{"1K", 1024, nil},
	{"1M", 1 << 20, nil},
	{"1G", 1 << 30, nil},
	{"1T", 1 << 40, nil},
	{"1P", 1 << 50, nil},
	{"1E", 1 << 60, nil},
	{"15E", 15 << 60, nil},
	{"1.5M", 1572864, nil},
	{"1.05M", 1101004, nil},
	{"1.123456789M", 1178029, nil},
	{"0.5K", 512, nil},
	{"1.5", 1, nil},
	{"1.0", 1, nil},
	{"1.", 1, nil},
	{"1.M", 1 << 20, nil},
	{"1.K", 1024, nil},
	{"0.0001K", 0, nil},
	{"1 M", 1 << 20, nil},
	{"1\tM", 1 << 20, nil},
	{"+1M", 1 << 20, nil},
	{"010M", 10 << 20, nil},
	{"1M512K", 1572864, nil},
	{"1M 512K", 1572864, nil},
	{"1G 1M 1K 1B", 1<<30 + 1<<20 + 1<<10 + 1, nil},
	{"1M1", 1048577, nil},
	{"1M 1", 1048577, nil},
	{"1M1B", 1048577, nil},
	{"1B1", 2, nil},
	{"1.5M1K", 1573888, nil},
	{"1.5M1.5K", 1574400, nil},
	{"10000000", 10000000, nil},
	{"50.00000000000000000001M", 50 << 20, nil},
	{"1.99999999999999999M", 2 << 20, nil}, // the float64 fraction rounds to 1.0
	{"0.1E", 115292150460684704, nil},      // float64 arithmetic, not exact
	{"0.3E", 345876451382054080, nil},
	{"0.1P", 112589990684262, nil},
	{"0.7T", 769658139443, nil},
	{"0.3331E", 384038153184540800, nil},         // divided digit by digit, not by 10^4 at once
	{"0.8149956E", 939625953399959936, nil},      // idem
	{"0.317331776148E", 365858628816115264, nil}, // idem
	{"1.000000000000000001E", 1152921504606846977, nil},
	{"14.9E", 17178530418642019968, nil},
	{"14.999999E", 17293821416181200128, nil},
	{"16382.9P", 18445505583812024729, nil},
	{"16383P", 16383 << 50, nil},
	{"15E1023P", 15<<60 + 1023<<50, nil},
	{"15E1023.5P", 15<<60 + 1023<<50 + 1<<49, nil},
	{"18446744073709551615", math.MaxUint64, nil},
	{"18446744073709551615B", math.MaxUint64, nil},
	{"18446744073709551614.5", math.MaxUint64 - 1, nil},
	{"18446744073709551615.5", math.MaxUint64, nil}, // N+1 wraps, as in systemd
	// Refused.
	{"", 0, errSyntax},
	{"M", 0, errSyntax},
	{".5M", 0, errSyntax},
	{"1k", 0, errSyntax},
	{"1KB", 0, errSyntax},
	{"1Ki", 0, errSyntax},
	{"1K1M", 0, errSyntax},
	{"1K1K", 0, errSyntax},
	{"1 1", 0, errSyntax},
	{"1M1M", 0, errSyntax},
	{"0x10M", 0, errSyntax},
	{"1e3", 0, errSyntax},
	{"1_000", 0, errSyntax},
	{"1.5.5M", 0, errSyntax},
	{"- 1", 0, errSyntax},
	{"junk", 0, errSyntax},
	{"-1", 0, errRange},
	{"-0", 0, errRange},
	{"-1M", 0, errRange},
	{"16E", 0, errRange},
	{"15.5E", 0, errRange},
	{"15.9E", 0, errRange},
	{"15.0000001E", 0, errRange},
	{"15.00000000000000001E", 0, errRange},
	{"16383.5P", 0, errRange},
	{"16383.000001P", 0, errRange},
	{"17592186044415T", 0, errRange},
	{"18446744073709551616", 0, errRange},
	{"99999999999999999999", 0, errRange},
	{"1.99999999999999999999M", 0, errRange}, // fraction digits overflow 64 bits
	{"15E1024P", 0, errRange},
	{"15E1023P1024T", 0, errRange},
}

func TestParseSize(t *testing.T) {
	for _, tt := range sizeCases {
		got, err := parseSize(tt.in)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("parseSize(%q) = %d, %v; want error %v", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseSizeExported(t *testing.T) {
	if n, err := ParseSize("1.5G"); err != nil || n != 1610612736 {
		t.Errorf("ParseSize(1.5G) = %d, %v", n, err)
	}
	// Blanks around the value are not trimmed: systemd's --size= refuses
	// a trailing blank and skips a leading one.
	if n, err := ParseSize(" 1M"); err != nil || n != 1<<20 {
		t.Errorf("ParseSize(\" 1M\") = %d, %v", n, err)
	}
	_, err := ParseSize("1M ")
	if !errors.Is(err, errSyntax) {
		t.Errorf("ParseSize(\"1M \") err = %v", err)
	}
	_, err = ParseSize("16E")
	if !errors.Is(err, errRange) || err.Error() != `invalid size "16E": out of range (use bytes or a number with suffix B, K, M, G, T, P or E, base 1024)` {
		t.Errorf("ParseSize(16E) err = %v", err)
	}
}

func TestRounding(t *testing.T) {
	tests := []struct{ in, down, up uint64 }{
		{0, 0, 0},
		{1, 0, 4096},
		{4095, 0, 4096},
		{4096, 4096, 4096},
		{4097, 4096, 8192},
		{15000000, 14999552, 15003648},
		{math.MaxUint64 - 4094, 18446744073709547520, math.MaxUint64},
		{18446744073709547520, 18446744073709547520, 18446744073709547520},
		{18446744073709547521, 18446744073709547520, math.MaxUint64},
		{math.MaxUint64, 18446744073709547520, math.MaxUint64},
	}
	for _, tt := range tests {
		if got := roundDown(tt.in); got != tt.down {
			t.Errorf("roundDown(%d) = %d, want %d", tt.in, got, tt.down)
		}
		if got := roundUp(tt.in); got != tt.up {
			t.Errorf("roundUp(%d) = %d, want %d", tt.in, got, tt.up)
		}
	}
}

// integerCases hold the integer syntax systemd-repart 252 accepts for
// Weight=, Priority= and Flags= (checked in TestOracleIntegers).
var integerCases = []struct {
	in       string
	unsigned uint64 // value for parseUnsigned(…, 32)
	uerr     error
	signed   int64 // value for parseSigned(…, 32)
	serr     error
}{
	{"0", 0, nil, 0, nil},
	{"5", 5, nil, 5, nil},
	{"+5", 5, nil, 5, nil},
	{"-0", 0, nil, 0, nil},
	{"-00", 0, nil, 0, nil},
	{"-0x0", 0, nil, 0, nil},
	{"00", 0, nil, 0, nil},
	{"010", 8, nil, 8, nil},
	{"07", 7, nil, 7, nil},
	{"0x10", 16, nil, 16, nil},
	{"0X10", 16, nil, 16, nil},
	{"+0x10", 16, nil, 16, nil},
	{"0b1", 1, nil, 1, nil},
	{"0B11", 3, nil, 3, nil},
	{"0o7", 7, nil, 7, nil},
	{"0O17", 15, nil, 15, nil},
	{"0b+1", 1, nil, 1, nil},
	{"0b 1", 1, nil, 1, nil},
	{"0b-0", 0, nil, 0, nil},
	{"-5", 0, errRange, -5, nil},
	{"-010", 0, errRange, -8, nil},
	{"-0x10", 0, errRange, -16, nil},
	{"2147483647", 2147483647, nil, 2147483647, nil},
	{"0x7fffffff", 0x7fffffff, nil, 0x7fffffff, nil},
	{"2147483648", 2147483648, nil, 0, errRange},
	{"0x80000000", 0x80000000, nil, 0, errRange},
	{"-2147483648", 0, errRange, -2147483648, nil},
	{"-0x80000000", 0, errRange, -2147483648, nil},
	{"-2147483649", 0, errRange, 0, errRange},
	{"4294967295", 4294967295, nil, 0, errRange},
	{"4294967296", 0, errRange, 0, errRange},
	{"", 0, errSyntax, 0, errSyntax},
	{"-", 0, errSyntax, 0, errSyntax},
	{"- 1", 0, errSyntax, 0, errSyntax},
	{"0x", 0, errSyntax, 0, errSyntax},
	{"0b", 0, errSyntax, 0, errSyntax},
	{"0o", 0, errSyntax, 0, errSyntax},
	{"08", 0, errSyntax, 0, errSyntax},
	{"09", 0, errSyntax, 0, errSyntax},
	{"0xg", 0, errSyntax, 0, errSyntax},
	{"0x 1", 0, errSyntax, 0, errSyntax},
	{"0x+1", 0, errSyntax, 0, errSyntax},
	{"0x-1", 0, errSyntax, 0, errSyntax},
	{"0b2", 0, errSyntax, 0, errSyntax},
	{"-0b1", 0, errSyntax, 0, errSyntax},
	{"1e3", 0, errSyntax, 0, errSyntax},
	{"1_000", 0, errSyntax, 0, errSyntax},
	{"1.5", 0, errSyntax, 0, errSyntax},
	{"yes", 0, errSyntax, 0, errSyntax},
}

func TestParseIntegers(t *testing.T) {
	for _, tt := range integerCases {
		u, err := parseUnsigned(tt.in, 32)
		if tt.uerr != nil {
			if !errors.Is(err, tt.uerr) {
				t.Errorf("parseUnsigned(%q) = %d, %v; want %v", tt.in, u, err, tt.uerr)
			}
		} else if err != nil || u != tt.unsigned {
			t.Errorf("parseUnsigned(%q) = %d, %v; want %d", tt.in, u, err, tt.unsigned)
		}
		s, err := parseSigned(tt.in, 32)
		if tt.serr != nil {
			if !errors.Is(err, tt.serr) {
				t.Errorf("parseSigned(%q) = %d, %v; want %v", tt.in, s, err, tt.serr)
			}
		} else if err != nil || s != tt.signed {
			t.Errorf("parseSigned(%q) = %d, %v; want %d", tt.in, s, err, tt.signed)
		}
	}
}

func TestParseUnsigned64(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		err  error
	}{
		{"18446744073709551615", math.MaxUint64, nil},
		{"0xffffffffffffffff", math.MaxUint64, nil},
		{"01777777777777777777777", math.MaxUint64, nil},
		{"0x8000000000000000", 1 << 63, nil},
		{"18446744073709551616", 0, errRange},
		{"0x1ffffffffffffffff", 0, errRange},
		{"02000000000000000000000", 0, errRange},
		{"-1", 0, errRange},
	}
	for _, tt := range tests {
		got, err := parseUnsigned(tt.in, 64)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("parseUnsigned(%q, 64) = %d, %v; want %v", tt.in, got, err, tt.err)
			}
		} else if err != nil || got != tt.want {
			t.Errorf("parseUnsigned(%q, 64) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

var boolCases = []struct {
	in   string
	want bool
	ok   bool
}{
	{"1", true, true}, {"yes", true, true}, {"y", true, true}, {"true", true, true}, {"t", true, true}, {"on", true, true},
	{"YES", true, true}, {"On", true, true}, {"T", true, true}, {"True", true, true}, {"Y", true, true},
	{"0", false, true}, {"no", false, true}, {"n", false, true}, {"false", false, true}, {"f", false, true}, {"off", false, true},
	{"NO", false, true}, {"Off", false, true}, {"FALSE", false, true}, {"N", false, true}, {"F", false, true},
	{"", false, false}, {"2", false, false}, {"maybe", false, false}, {"enable", false, false}, {"00", false, false}, {"yes!", false, false},
}

func TestParseBool(t *testing.T) {
	for _, tt := range boolCases {
		got, err := parseBool(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseBool(%q) = %v, %v; want %v (ok=%v)", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
