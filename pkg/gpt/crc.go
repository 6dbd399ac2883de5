package gpt

import "encoding/binary"

// crc32IEEE is the CRC-32 (IEEE) that GPT headers and entry arrays carry,
// as hash/crc32.ChecksumIEEE computes it. sprout computes it itself
// because every boot checks both copies of the table (33 KiB), and
// hash/crc32 builds its IEEE tables at run time, on the first checksum:
// 8 KiB of heap and some 40 000 instructions before the first header
// (docs/benchmarks.md). Here the tables are constants (crctables.go), and
// runs of zero bytes — most of an entry array — are skipped in a few
// steps instead of being fed through the tables byte by byte. TestCRC
// holds it to hash/crc32, which the tests' GPT builder (gpttest) and
// go-diskfs's writer still use.
func crc32IEEE(p []byte) uint32 {
	const block = 64
	var zero [block]byte
	crc := ^uint32(0)
	zeros := 0 // zero bytes seen and not yet applied
	for len(p) > 0 {
		n := min(block, len(p))
		if string(p[:n]) == string(zero[:n]) {
			zeros += n
			p = p[n:]
			continue
		}
		if zeros > 0 {
			crc = crcZeros(crc, zeros)
			zeros = 0
		}
		crc = crcUpdate(crc, p[:n])
		p = p[n:]
	}
	if zeros > 0 {
		crc = crcZeros(crc, zeros)
	}
	return ^crc
}

// crcUpdate feeds p through the tables, eight bytes at a time
// (slicing-by-8).
func crcUpdate(crc uint32, p []byte) uint32 {
	t := &crcTables
	for len(p) >= 8 {
		crc ^= binary.LittleEndian.Uint32(p)
		crc = t[7][byte(crc)] ^ t[6][byte(crc>>8)] ^ t[5][byte(crc>>16)] ^ t[4][byte(crc>>24)] ^
			t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]]
		p = p[8:]
	}
	for _, b := range p {
		crc = t[0][byte(crc)^b] ^ crc>>8
	}
	return crc
}

// crcZeros is the register after n more zero bytes: feeding a zero byte
// multiplies it by x^8 modulo the polynomial, so n of them multiply it by
// x^(8n), which is put together from the powers x^(2^k) in crcPowers
// (they repeat after 32). In this bit order x^0 is the top bit.
func crcZeros(crc uint32, n int) uint32 {
	for k := 3; n > 0; k, n = k+1, n>>1 { // x^8 = x^(2^3)
		if n&1 != 0 {
			crc = crcMultiply(crcPowers[k%32], crc)
		}
	}
	return crc
}

// crcMultiply is a·b modulo the CRC polynomial, a not zero.
func crcMultiply(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; ; m >>= 1 {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				return p
			}
		}
		if b&1 != 0 {
			b = b>>1 ^ crcPolynomial
		} else {
			b >>= 1
		}
	}
}

// crcPolynomial is CRC-32's polynomial, in this bit order (hash/crc32.IEEE).
const crcPolynomial = 0xedb88320
