package sdvalue_test

import (
	"errors"
	"math"
	"testing"

	"github.com/sprout-initrd/sprout/pkg/sdvalue"
	"github.com/sprout-initrd/sprout/pkg/sdvalue/sdvaluetest"
)

func TestParseSize(t *testing.T) {
	for _, tt := range sdvaluetest.Sizes {
		got, err := sdvalue.Size(tt.In)
		if tt.Err != nil {
			if !errors.Is(err, tt.Err) {
				t.Errorf("Size(%q) = %d, %v; want error %v", tt.In, got, err, tt.Err)
			}
			continue
		}
		if err != nil || got != tt.Want {
			t.Errorf("Size(%q) = %d, %v; want %d", tt.In, got, err, tt.Want)
		}
	}
}

func TestParseSizeExported(t *testing.T) {
	if n, err := sdvalue.ParseSize("1.5G"); err != nil || n != 1610612736 {
		t.Errorf("ParseSize(1.5G) = %d, %v", n, err)
	}
	// Blanks around the value are not trimmed: systemd's --size= refuses
	// a trailing blank and skips a leading one.
	if n, err := sdvalue.ParseSize(" 1M"); err != nil || n != 1<<20 {
		t.Errorf("ParseSize(\" 1M\") = %d, %v", n, err)
	}
	_, err := sdvalue.ParseSize("1M ")
	if !errors.Is(err, sdvalue.ErrSyntax) {
		t.Errorf("ParseSize(\"1M \") err = %v", err)
	}
	_, err = sdvalue.ParseSize("16E")
	if !errors.Is(err, sdvalue.ErrRange) || err.Error() != `invalid size "16E": out of range (use bytes or a number with suffix B, K, M, G, T, P or E, base 1024)` {
		t.Errorf("ParseSize(16E) err = %v", err)
	}
}

func TestParseIntegers(t *testing.T) {
	for _, tt := range sdvaluetest.Integers {
		u, err := sdvalue.Unsigned(tt.In, 32)
		if tt.UErr != nil {
			if !errors.Is(err, tt.UErr) {
				t.Errorf("Unsigned(%q) = %d, %v; want %v", tt.In, u, err, tt.UErr)
			}
		} else if err != nil || u != tt.Unsigned {
			t.Errorf("Unsigned(%q) = %d, %v; want %d", tt.In, u, err, tt.Unsigned)
		}
		s, err := sdvalue.Signed(tt.In, 32)
		if tt.SErr != nil {
			if !errors.Is(err, tt.SErr) {
				t.Errorf("Signed(%q) = %d, %v; want %v", tt.In, s, err, tt.SErr)
			}
		} else if err != nil || s != tt.Signed {
			t.Errorf("Signed(%q) = %d, %v; want %d", tt.In, s, err, tt.Signed)
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
		{"18446744073709551616", 0, sdvalue.ErrRange},
		{"0x1ffffffffffffffff", 0, sdvalue.ErrRange},
		{"02000000000000000000000", 0, sdvalue.ErrRange},
		{"-1", 0, sdvalue.ErrRange},
	}
	for _, tt := range tests {
		got, err := sdvalue.Unsigned(tt.in, 64)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("Unsigned(%q, 64) = %d, %v; want %v", tt.in, got, err, tt.err)
			}
		} else if err != nil || got != tt.want {
			t.Errorf("Unsigned(%q, 64) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseBool(t *testing.T) {
	for _, tt := range sdvaluetest.Booleans {
		got, err := sdvalue.ParseBool(tt.In)
		if (err == nil) != tt.OK || got != tt.Want {
			t.Errorf("ParseBool(%q) = %v, %v; want %v (ok=%v)", tt.In, got, err, tt.Want, tt.OK)
		}
	}
}
