package gpt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The MBR partition records and boot signature: bytes 446..511 of LBA 0,
// whatever the sector size (go-diskfs looks for the signature at the end
// of the sector, which on 4K-sector disks is the wrong place).
const (
	mbrRecordsOffset = 446
	mbrRecordSize    = 16
	mbrTailSize      = 512 - mbrRecordsOffset // four records + 0x55AA
	protectiveType   = 0xEE
)

type mbrKind int

const (
	mbrNone       mbrKind = iota // no 0x55AA signature
	mbrProtective                // one or more 0xEE records, nothing else
	mbrHybrid                    // 0xEE next to other records
	mbrDOS                       // a signature without any 0xEE record
)

// mbrSector is what LBA 0 says about the disk's label.
type mbrSector struct {
	kind mbrKind
	used int // records with a non-zero type
	ee   int // slot of the first 0xEE record, -1 if none
	rec  []byte
}

func classifyMBR(lba0 []byte) mbrSector {
	m := mbrSector{ee: -1, rec: lba0[mbrRecordsOffset:512]}
	if lba0[510] != 0x55 || lba0[511] != 0xAA {
		return m
	}
	for i := range 4 {
		switch m.rec[i*mbrRecordSize+4] {
		case 0:
		case protectiveType:
			m.used++
			if m.ee < 0 {
				m.ee = i
			}
		default:
			m.used++
		}
	}
	switch {
	case m.ee < 0:
		m.kind = mbrDOS
	case m.used > 1:
		m.kind = mbrHybrid
	default:
		m.kind = mbrProtective
	}
	return m
}

// problem describes how LBA 0 falls short of a protective MBR for a disk
// of the given number of sectors, in the terms libfdisk checks (it
// accepts a size field of 0xFFFFFFFF for any disk); "" if it does not.
// A record that covers tableSectors, the disk the GPT was made for, is
// fine too: that is an image dd'ed onto a bigger disk, not damage, and
// moving the backup GPT rewrites it.
func (m mbrSector) problem(sectors, tableSectors uint64) string {
	switch m.kind {
	case mbrNone:
		return "LBA 0 has no MBR boot signature, so there is no protective MBR"
	case mbrHybrid:
		return "" // deliberate, and kept (Table.HybridMBR)
	case mbrDOS:
		return "LBA 0 holds an MBR without a protective record"
	}
	r := m.rec[m.ee*mbrRecordSize : (m.ee+1)*mbrRecordSize]
	start := binary.LittleEndian.Uint32(r[8:12])
	n := binary.LittleEndian.Uint32(r[12:16])
	switch {
	case start != 1:
		return fmt.Sprintf("the protective MBR record starts at LBA %d, not 1", start)
	case n != protectiveSize(sectors) && n != protectiveSize(tableSectors) && n != math.MaxUint32:
		return fmt.Sprintf("the protective MBR covers %d sectors, the disk has %d after LBA 0", n, sectors-1)
	}
	return ""
}

// protectiveSize is the protective record's size field: every sector after
// LBA 0, capped at what 32 bits hold (disks over 2 TiB at 512 B/sector).
// go-diskfs truncates instead of capping.
func protectiveSize(sectors uint64) uint32 {
	return uint32(min(sectors-1, math.MaxUint32))
}

// The protective record's CHS fields as the UEFI spec asks for them, and
// as libfdisk writes them: start head 0, sector 2, cylinder 0; end beyond
// what CHS can address.
var (
	protectiveStartCHS = [3]byte{0x00, 0x02, 0x00}
	protectiveEndCHS   = [3]byte{0xFF, 0xFF, 0xFF}
)

// fixProtectiveRecord corrects the protective MBR go-diskfs wrote (bytes
// 446..511 of LBA 0) for a disk of the given number of sectors: the CHS
// fields it leaves zero (defect 4) and the size it truncates to 32 bits
// (defect 3).
func fixProtectiveRecord(b []byte, sectors uint64) {
	r := b[0:mbrRecordSize]
	copy(r[1:4], protectiveStartCHS[:])
	copy(r[5:8], protectiveEndCHS[:])
	binary.LittleEndian.PutUint32(r[12:16], protectiveSize(sectors))
}

// checkProtectiveMBR decodes bytes 446..511 of LBA 0 and checks that they
// are the protective MBR libfdisk writes for a disk of the given number of
// sectors: one non-bootable record of type 0xEE from LBA 1 over the rest
// of the disk, the spec's CHS fields, three empty records and the boot
// signature.
func checkProtectiveMBR(b []byte, sectors uint64) error {
	if len(b) != mbrTailSize || b[64] != 0x55 || b[65] != 0xAA {
		return errors.New("no boot signature at bytes 510-511")
	}
	r := b[0:mbrRecordSize]
	switch {
	case r[0] != 0 || r[4] != protectiveType:
		return fmt.Errorf("first record has boot flag %#x and type %#x, want 0 and %#x", r[0], r[4], protectiveType)
	case [3]byte(r[1:4]) != protectiveStartCHS || [3]byte(r[5:8]) != protectiveEndCHS:
		return fmt.Errorf("CHS fields % x and % x, want % x and % x", r[1:4], r[5:8], protectiveStartCHS, protectiveEndCHS)
	case binary.LittleEndian.Uint32(r[8:12]) != 1:
		return fmt.Errorf("record starts at LBA %d, not 1", binary.LittleEndian.Uint32(r[8:12]))
	case binary.LittleEndian.Uint32(r[12:16]) != protectiveSize(sectors):
		return fmt.Errorf("record covers %d sectors, want %d", binary.LittleEndian.Uint32(r[12:16]), protectiveSize(sectors))
	case !isZero(b[mbrRecordSize : 4*mbrRecordSize]):
		return errors.New("records 2-4 are not empty")
	}
	return nil
}
