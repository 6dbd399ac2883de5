// Package sdvalue/sdvaluetest holds the value cases that sdvalue's unit
// tests and the repart.d parser's oracle tests (against systemd-repart
// 252) share: one list, checked on both sides.
package sdvaluetest

import (
	"math"

	"github.com/sprout-initrd/sprout/pkg/sdvalue"
)

// Sizes are parse results systemd-repart 252.39 produced for
// SizeMaxBytes= (read from its "Rounded ... size N" notice or its refusal);
// the repart.d parser's TestOracleSizes re-checks them against the binary.
var Sizes = []struct {
	In   string
	Want uint64
	Err  error // sdvalue.ErrSyntax or sdvalue.ErrRange; nil when valid
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
	{"", 0, sdvalue.ErrSyntax},
	{"M", 0, sdvalue.ErrSyntax},
	{".5M", 0, sdvalue.ErrSyntax},
	{"1k", 0, sdvalue.ErrSyntax},
	{"1KB", 0, sdvalue.ErrSyntax},
	{"1Ki", 0, sdvalue.ErrSyntax},
	{"1K1M", 0, sdvalue.ErrSyntax},
	{"1K1K", 0, sdvalue.ErrSyntax},
	{"1 1", 0, sdvalue.ErrSyntax},
	{"1M1M", 0, sdvalue.ErrSyntax},
	{"0x10M", 0, sdvalue.ErrSyntax},
	{"1e3", 0, sdvalue.ErrSyntax},
	{"1_000", 0, sdvalue.ErrSyntax},
	{"1.5.5M", 0, sdvalue.ErrSyntax},
	{"- 1", 0, sdvalue.ErrSyntax},
	{"junk", 0, sdvalue.ErrSyntax},
	{"-1", 0, sdvalue.ErrRange},
	{"-0", 0, sdvalue.ErrRange},
	{"-1M", 0, sdvalue.ErrRange},
	{"16E", 0, sdvalue.ErrRange},
	{"15.5E", 0, sdvalue.ErrRange},
	{"15.9E", 0, sdvalue.ErrRange},
	{"15.0000001E", 0, sdvalue.ErrRange},
	{"15.00000000000000001E", 0, sdvalue.ErrRange},
	{"16383.5P", 0, sdvalue.ErrRange},
	{"16383.000001P", 0, sdvalue.ErrRange},
	{"17592186044415T", 0, sdvalue.ErrRange},
	{"18446744073709551616", 0, sdvalue.ErrRange},
	{"99999999999999999999", 0, sdvalue.ErrRange},
	{"1.99999999999999999999M", 0, sdvalue.ErrRange}, // fraction digits overflow 64 bits
	{"15E1024P", 0, sdvalue.ErrRange},
	{"15E1023P1024T", 0, sdvalue.ErrRange},
}

// Integers hold the integer syntax systemd-repart 252 accepts for
// Weight=, Priority= and Flags= (checked in TestOracleIntegers).
var Integers = []struct {
	In       string
	Unsigned uint64 // value for sdvalue.Unsigned(…, 32)
	UErr     error
	Signed   int64 // value for sdvalue.Signed(…, 32)
	SErr     error
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
	{"-5", 0, sdvalue.ErrRange, -5, nil},
	{"-010", 0, sdvalue.ErrRange, -8, nil},
	{"-0x10", 0, sdvalue.ErrRange, -16, nil},
	{"2147483647", 2147483647, nil, 2147483647, nil},
	{"0x7fffffff", 0x7fffffff, nil, 0x7fffffff, nil},
	{"2147483648", 2147483648, nil, 0, sdvalue.ErrRange},
	{"0x80000000", 0x80000000, nil, 0, sdvalue.ErrRange},
	{"-2147483648", 0, sdvalue.ErrRange, -2147483648, nil},
	{"-0x80000000", 0, sdvalue.ErrRange, -2147483648, nil},
	{"-2147483649", 0, sdvalue.ErrRange, 0, sdvalue.ErrRange},
	{"4294967295", 4294967295, nil, 0, sdvalue.ErrRange},
	{"4294967296", 0, sdvalue.ErrRange, 0, sdvalue.ErrRange},
	{"", 0, sdvalue.ErrSyntax, 0, sdvalue.ErrSyntax},
	{"-", 0, sdvalue.ErrSyntax, 0, sdvalue.ErrSyntax},
	{"- 1", 0, sdvalue.ErrSyntax, 0, sdvalue.ErrSyntax},
	{"0x", 0, sdvalue.ErrSyntax, 0, sdvalue.ErrSyntax},
	{"0b", 0, sdvalue.ErrSyntax, 0, sdvalue.ErrSyntax},
	{"0o", 0, sdvalue.ErrSyntax, 0, sdvalue.ErrSyntax},
	{"08", 0, sdvalue.ErrSyntax, 0, sdvalue.ErrSyntax},
	{"09", 0, sdvalue.ErrSyntax, 0, sdvalue.ErrSyntax},
	{"0xg", 0, sdvalue.ErrSyntax, 0, sdvalue.ErrSyntax},
	{"0x 1", 0, sdvalue.ErrSyntax, 0, sdvalue.ErrSyntax},
	{"0x+1", 0, sdvalue.ErrSyntax, 0, sdvalue.ErrSyntax},
	{"0x-1", 0, sdvalue.ErrSyntax, 0, sdvalue.ErrSyntax},
	{"0b2", 0, sdvalue.ErrSyntax, 0, sdvalue.ErrSyntax},
	{"-0b1", 0, sdvalue.ErrSyntax, 0, sdvalue.ErrSyntax},
	{"1e3", 0, sdvalue.ErrSyntax, 0, sdvalue.ErrSyntax},
	{"1_000", 0, sdvalue.ErrSyntax, 0, sdvalue.ErrSyntax},
	{"1.5", 0, sdvalue.ErrSyntax, 0, sdvalue.ErrSyntax},
	{"yes", 0, sdvalue.ErrSyntax, 0, sdvalue.ErrSyntax},
}

// Booleans are the words systemd reads as booleans, and some it does not
// (checked in the repart.d parser's TestOracleFlagsAndBooleans).
var Booleans = []struct {
	In   string
	Want bool
	OK   bool
}{
	{"1", true, true}, {"yes", true, true}, {"y", true, true}, {"true", true, true}, {"t", true, true}, {"on", true, true},
	{"YES", true, true}, {"On", true, true}, {"T", true, true}, {"True", true, true}, {"Y", true, true},
	{"0", false, true}, {"no", false, true}, {"n", false, true}, {"false", false, true}, {"f", false, true}, {"off", false, true},
	{"NO", false, true}, {"Off", false, true}, {"FALSE", false, true}, {"N", false, true}, {"F", false, true},
	{"", false, false}, {"2", false, false}, {"maybe", false, false}, {"enable", false, false}, {"00", false, false}, {"yes!", false, false},
}
