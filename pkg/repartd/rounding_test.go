package repartd

import (
	"math"
	"testing"
)

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
