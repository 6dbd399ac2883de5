package repartd

import "math"

// Sizes in definitions are multiples of 4096 in systemd-repart 252.19 and
// later: minimums are rounded down, maximums up (saturating at 2^64-1,
// which means "unset").
const sizeGrain = 4096

func roundDown(v uint64) uint64 { return v / sizeGrain * sizeGrain }

func roundUp(v uint64) uint64 {
	if v > math.MaxUint64-(sizeGrain-1) {
		return math.MaxUint64
	}
	return (v + sizeGrain - 1) / sizeGrain * sizeGrain
}
