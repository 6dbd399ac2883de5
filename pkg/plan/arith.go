package plan

// Byte arithmetic as systemd-repart 252 does it: unsigned 64-bit, with
// "unset"/"infinite" represented by the maximum value and saturating
// operations where an overflow would otherwise wrap.

const infinite = ^uint64(0)

const (
	kib = 1 << 10
	mib = 1 << 20

	// defaultMinSize is the minimum size of a partition whose definition
	// has no SizeMinBytes= (repart.d(5): "defaults to 10M").
	defaultMinSize = 10 * mib
	// hardMinSize is the smallest size a new partition can start from.
	hardMinSize = 4096
	// gptMetadataSize is what --size=auto reserves for the two GPT copies.
	gptMetadataSize = 1044 * kib
)

func roundDown(v, to uint64) uint64 { return v / to * to }

// roundUp rounds v up to a multiple of to, saturating at infinite.
func roundUp(v, to uint64) uint64 {
	q := v / to
	if v%to != 0 {
		q++
	}
	if q > infinite/to {
		return infinite
	}
	return q * to
}

// lessBy returns a-b, or 0 when b ≥ a.
func lessBy(a, b uint64) uint64 {
	if b >= a {
		return 0
	}
	return a - b
}

// addSat adds without wrapping.
func addSat(a, b uint64) uint64 {
	if a > infinite-b {
		return infinite
	}
	return a + b
}

// scaleByWeight returns value*weight/sum, halving weight and sum until
// the product fits in 64 bits. The halving order (weight rounded down,
// sum rounded up) decides the last byte of big disks, so it matters.
func scaleByWeight(value, weight, sum uint64) uint64 {
	for {
		if weight == 0 {
			return 0
		}
		if weight == sum {
			return value
		}
		if value <= infinite/weight {
			return value * weight / sum
		}
		sum = (sum + 1) / 2
		weight /= 2
	}
}
