package gpt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"

	"github.com/google/uuid"
)

// On-disk constants (UEFI spec, "GUID Partition Table Disk Layout").
const (
	headerSize     = 92 // the only header size go-diskfs accepts, and what libfdisk writes
	entrySize      = 128
	nameUnits      = 36 // UTF-16 code units in an entry's name field
	defaultEntries = 128

	// maxEntryCount bounds the entry array we are willing to read (2 MiB).
	// Real tables have 128 entries; Linux cannot use more than a few
	// hundred partitions anyway. The bound keeps a crafted header from
	// making us (or go-diskfs, which allocates count×size) exhaust memory.
	maxEntryCount = 16384
)

const (
	headerSignature = "EFI PART"
	headerRevision  = 0x00010000 // 1.0

	// Byte offsets of the header fields Encode's guards set.
	offFirstUsable = 40
	offEntriesLBA  = 72
)

// errNoSignature marks a sector without "EFI PART": there is no header
// there at all, as opposed to a damaged one.
var errNoSignature = errors.New("no GPT signature")

// header is a GPT header as stored on disk, in either position.
type header struct {
	myLBA        uint64
	alternateLBA uint64
	firstUsable  uint64
	lastUsable   uint64
	diskGUID     uuid.UUID
	entriesLBA   uint64
	entryCount   uint32
	entrySize    uint32
	entriesCRC   uint32
}

// parseHeader decodes and checks the fixed part of a header sector: the
// signature, revision, size, reserved field and CRC. It does not judge the
// LBAs; see checkLayout.
func parseHeader(sector []byte) (header, error) {
	if len(sector) < headerSize || string(sector[0:8]) != headerSignature {
		return header{}, errNoSignature
	}
	if rev := binary.LittleEndian.Uint32(sector[8:12]); rev != headerRevision {
		return header{}, fmt.Errorf("unsupported header revision %#08x", rev)
	}
	if n := binary.LittleEndian.Uint32(sector[12:16]); n != headerSize {
		return header{}, fmt.Errorf("unsupported header size %d (only %d)", n, headerSize)
	}
	if binary.LittleEndian.Uint32(sector[20:24]) != 0 {
		return header{}, errors.New("reserved header field is not zero")
	}
	stored := binary.LittleEndian.Uint32(sector[16:20])
	if computed := headerCRC(sector); stored != computed {
		return header{}, fmt.Errorf("header CRC mismatch (stored %08x, computed %08x)", stored, computed)
	}
	return header{
		myLBA:        binary.LittleEndian.Uint64(sector[24:32]),
		alternateLBA: binary.LittleEndian.Uint64(sector[32:40]),
		firstUsable:  binary.LittleEndian.Uint64(sector[40:48]),
		lastUsable:   binary.LittleEndian.Uint64(sector[48:56]),
		diskGUID:     guidFromDisk(sector[56:72]),
		entriesLBA:   binary.LittleEndian.Uint64(sector[72:80]),
		entryCount:   binary.LittleEndian.Uint32(sector[80:84]),
		entrySize:    binary.LittleEndian.Uint32(sector[84:88]),
		entriesCRC:   binary.LittleEndian.Uint32(sector[88:92]),
	}, nil
}

// setHeaderField stores v at byte off of a header sector and recomputes
// the header's CRC. It is how the guards in Encode correct a field
// go-diskfs cannot be told (the first usable LBA of a new table, a moved
// entry array); sprout composes no header of its own.
func setHeaderField(sector []byte, off int, v uint64) {
	binary.LittleEndian.PutUint64(sector[off:off+8], v)
	binary.LittleEndian.PutUint32(sector[16:20], headerCRC(sector))
}

// headerCRC is the CRC32 of the first 92 bytes with the CRC field zeroed.
func headerCRC(sector []byte) uint32 {
	var b [headerSize]byte
	copy(b[:], sector[:headerSize])
	clear(b[16:20])
	return crc32IEEE(b[:])
}

// arraySectors is how many sectors an entry array of count entries
// occupies. Callers have checked that it divides evenly.
func arraySectors(count uint32, sectorSize int) uint64 {
	return uint64(count) * entrySize / uint64(sectorSize)
}

// checkArrayShape refuses entry arrays go-diskfs cannot handle or that
// would make us allocate without bound.
func checkArrayShape(count, size uint32, sectorSize int) error {
	switch {
	case size != entrySize:
		return fmt.Errorf("entry size %d is not supported (only %d)", size, entrySize)
	case count == 0:
		return errors.New("entry count is 0")
	case count > maxEntryCount:
		return fmt.Errorf("entry count %d exceeds the supported maximum %d", count, maxEntryCount)
	case uint64(count)*entrySize%uint64(sectorSize) != 0:
		// go-diskfs rounds the backup array position down; refuse rather
		// than have it place the array on top of the backup header.
		return fmt.Errorf("entry array of %d entries does not fill whole %d-byte sectors", count, sectorSize)
	}
	return nil
}

// guidFromDisk converts the GPT's mixed-endian GUID layout (first three
// fields little-endian) to RFC 4122 byte order.
func guidFromDisk(b []byte) uuid.UUID {
	var u uuid.UUID
	copy(u[:], b[:16])
	u[0], u[1], u[2], u[3] = b[3], b[2], b[1], b[0]
	u[4], u[5] = b[5], b[4]
	u[6], u[7] = b[7], b[6]
	return u
}

// extent is the sector range of one used entry, as read from the raw array.
type extent struct {
	index       int
	first, last uint64
}

// usedExtents lists the used slots of a raw entry array (type GUID not
// zero), in slot order.
func usedExtents(array []byte) []extent {
	var out []extent
	for i := 0; i+entrySize <= len(array); i += entrySize {
		e := array[i : i+entrySize]
		if binary.LittleEndian.Uint64(e[0:8])|binary.LittleEndian.Uint64(e[8:16]) == 0 {
			continue // no type GUID (two loads, not 16 byte tests: every boot scans 384 slots)
		}
		out = append(out, extent{
			index: i/entrySize + 1,
			first: binary.LittleEndian.Uint64(e[32:40]),
			last:  binary.LittleEndian.Uint64(e[40:48]),
		})
	}
	return out
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// utf16Len is the number of UTF-16 code units name takes.
func utf16Len(name string) int {
	n := 0
	for _, r := range name {
		n += utf16.RuneLen(r)
	}
	return n
}
