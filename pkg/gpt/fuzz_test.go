package gpt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/gpt/gpttest"
)

// FuzzRead reads arbitrary bytes as a disk, at 512- and 4096-byte sectors.
//
// The disk is data followed by extraSectors zero sectors (so a small input
// can stand for an image dd'ed onto a bigger disk). Random bytes almost
// never carry valid CRCs, so the harness recomputes them first, unless
// raw says not to (bit 0: the header at LBA 1 and its array; bit 1: the
// header at the backup position and its array); that lets the fuzzer
// reach the layout checks and the decoder.
//
// Properties: Read never panics; no single read asks for more than the
// largest entry array Read accepts (bounded allocation, whatever the
// header claims); go-diskfs decodes a table Read returns the same way
// (diskfsAgrees); a refusal wraps ErrNoLabel, ErrOtherLabel or ErrCorrupt
// and is one printable line; a returned table, with its backup moved to
// the disk's end when the disk grew, passes Validate and encodes; and
// what Encode writes reads back as the same table with nothing left to
// repair.
//
// Run longer with: go test ./pkg/gpt -run '^$' -fuzz '^FuzzRead$' -fuzztime 10m
func FuzzRead(f *testing.F) {
	for _, s := range fuzzReadSeeds(f) {
		f.Add(s.data, s.extra, s.raw)
	}
	f.Fuzz(func(t *testing.T, data []byte, extraSectors uint16, raw uint8) {
		for _, ss := range []int{512, 4096} {
			fuzzReadOnce(t, data, extraSectors, raw, ss)
		}
	})
}

// fuzzMaxRead is the largest read Read may issue: the biggest entry array
// it accepts.
const fuzzMaxRead = maxEntryCount * entrySize

// largestReadRecorder records the largest read asked of the disk; every
// buffer Read fills is one read.
type largestReadRecorder struct {
	d       *memDisk
	largest int
}

func (r *largestReadRecorder) ReadAt(p []byte, off int64) (int, error) {
	r.largest = max(r.largest, len(p))
	return r.d.ReadAt(p, off)
}

func fuzzReadOnce(t *testing.T, data []byte, extraSectors uint16, raw uint8, ss int) {
	buf := bytes.Clone(data)
	size := int64(len(buf)) + int64(extraSectors)*int64(ss)
	fixFuzzCRCs(buf, size, ss, raw)
	d := newMemDisk(size)
	if len(buf) > 0 {
		if _, err := d.WriteAt(buf, 0); err != nil {
			t.Fatal(err)
		}
	}
	r := &largestReadRecorder{d: d}
	tab, err := Read(r, size, ss)
	if r.largest > fuzzMaxRead {
		t.Fatalf("%d-byte sectors: Read asked for %d bytes at once (limit %d)", ss, r.largest, fuzzMaxRead)
	}
	if err != nil {
		if !errors.Is(err, ErrNoLabel) && !errors.Is(err, ErrOtherLabel) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%d-byte sectors: error wraps none of ErrNoLabel, ErrOtherLabel, ErrCorrupt: %v", ss, err)
		}
		if msg := err.Error(); strings.IndexFunc(msg, func(r rune) bool { return unicode.IsControl(r) }) >= 0 {
			t.Fatalf("%d-byte sectors: error is not one printable line: %q", ss, msg)
		}
		return
	}
	fuzzCheckTable(t, tab, size, ss)
	diskfsAgrees(t, d, size, tab)

	// Bring the table to the disk's end as the planner does, check it and
	// store it; the result must read back identically and clean.
	want := tab.Clone()
	if want.Grown(size) {
		want.Relocate(size)
	}
	if err := want.Validate(size); err != nil {
		t.Fatalf("%d-byte sectors: Read returned a table that fails Validate: %v\n%+v", ss, err, tab)
	}
	writes, err := want.Encode(size)
	if err != nil {
		t.Fatalf("%d-byte sectors: Read returned a table that does not encode: %v\n%+v", ss, err, tab)
	}
	d2 := d.clone(size)
	for _, w := range writes {
		if _, err := d2.WriteAt(w.Data, w.Offset); err != nil {
			t.Fatalf("%d-byte sectors: writing %s: %v", ss, w.What, err)
		}
	}
	got, err := Read(d2, size, ss)
	if err != nil {
		t.Fatalf("%d-byte sectors: the table as written does not read back: %v\n%+v", ss, err, want)
	}
	if got.RecoveredFromBackup || got.PrimaryInvalid != "" || got.BackupInvalid != "" || got.ProtectiveMBRInvalid != "" {
		t.Fatalf("%d-byte sectors: the table as written still needs repair: primary %q, backup %q, MBR %q",
			ss, got.PrimaryInvalid, got.BackupInvalid, got.ProtectiveMBRInvalid)
	}
	want.RecoveredFromBackup, want.PrimaryInvalid, want.BackupInvalid, want.ProtectiveMBRInvalid = false, "", "", ""
	if !reflect.DeepEqual(fuzzNormalized(got), fuzzNormalized(want)) {
		t.Fatalf("%d-byte sectors: the table read back differs from the one written:\ngot  %+v\nwant %+v", ss, got, want)
	}
}

// fuzzNormalized treats a nil and an empty entry list alike, and leaves
// out the bytes each table was read from.
func fuzzNormalized(t *Table) *Table {
	c := t.Clone()
	if len(c.Entries) == 0 {
		c.Entries = nil
	}
	c.source = nil
	return c
}

// fuzzCheckTable asserts what the planner relies on in a table Read returns.
func fuzzCheckTable(t *testing.T, tab *Table, size int64, ss int) {
	t.Helper()
	last := uint64(size)/uint64(ss) - 1
	switch {
	case tab.SectorSize != ss:
		t.Fatalf("table has sector size %d, read at %d", tab.SectorSize, ss)
	case tab.BackupLBA > last:
		t.Fatalf("backup header LBA %d beyond the last LBA %d", tab.BackupLBA, last)
	case tab.LastUsableLBA >= tab.BackupLBA:
		t.Fatalf("last usable LBA %d not before the backup header at %d", tab.LastUsableLBA, tab.BackupLBA)
	case tab.RecoveredFromBackup != (tab.PrimaryInvalid != ""):
		t.Fatalf("RecoveredFromBackup %v but PrimaryInvalid %q", tab.RecoveredFromBackup, tab.PrimaryInvalid)
	}
	for i, e := range tab.Entries {
		if i > 0 && tab.Entries[i-1].Index >= e.Index {
			t.Fatalf("entries not sorted by slot: %d then %d", tab.Entries[i-1].Index, e.Index)
		}
		if e.Type == uuid.Nil {
			t.Fatalf("entry %d has a zero type (an unused slot)", e.Index)
		}
	}
}

// fixFuzzCRCs recomputes the array and header CRCs of the GPT headers
// that raw does not exempt, where buf (followed by zeros up to size) has
// them.
func fixFuzzCRCs(buf []byte, size int64, ss int, raw uint8) {
	sectors := uint64(size) / uint64(ss)
	if sectors < 3 {
		return
	}
	backup := sectors - 1
	if h := fuzzHeaderAt(buf, 1, ss); h != nil {
		if alt := binary.LittleEndian.Uint64(h[32:40]); alt > 1 && alt < sectors {
			backup = alt
		}
	}
	if raw&1 == 0 {
		fuzzFixHeaderAt(buf, size, 1, ss)
	}
	if raw&2 == 0 {
		fuzzFixHeaderAt(buf, size, backup, ss)
	}
}

// fuzzHeaderAt returns the header sector at lba if it is inside buf and
// carries the GPT signature.
func fuzzHeaderAt(buf []byte, lba uint64, ss int) []byte {
	off := lba * uint64(ss)
	if off+uint64(ss) > uint64(len(buf)) || string(buf[off:off+8]) != headerSignature {
		return nil
	}
	return buf[off : off+uint64(ss)]
}

func fuzzFixHeaderAt(buf []byte, size int64, lba uint64, ss int) {
	h := fuzzHeaderAt(buf, lba, ss)
	if h == nil {
		return
	}
	n := uint64(binary.LittleEndian.Uint32(h[80:84])) * uint64(binary.LittleEndian.Uint32(h[84:88]))
	at := binary.LittleEndian.Uint64(h[72:80])
	if n <= fuzzMaxRead && at < uint64(size)/uint64(ss) && at*uint64(ss)+n <= uint64(size) {
		array := make([]byte, n)
		if start := at * uint64(ss); start < uint64(len(buf)) {
			copy(array, buf[start:])
		}
		binary.LittleEndian.PutUint32(h[88:92], crc32.ChecksumIEEE(array))
	}
	fixHeaderCRC(h)
}

type fuzzReadSeed struct {
	data  []byte
	extra uint16
	raw   uint8 // which CRCs to leave as they are
}

// fuzzReadSeeds builds small disks (entry arrays of one sector, which
// go-diskfs cannot create: gpttest crafts them) and damages them in the
// ways the bad-input catalogue does.
func fuzzReadSeeds(f *testing.F) []fuzzReadSeed {
	var seeds []fuzzReadSeed
	add := func(data []byte, extra uint16, raw uint8) {
		seeds = append(seeds, fuzzReadSeed{data, extra, raw})
	}
	for _, ss := range []int{512, 4096} {
		// The smallest entry array is one sector: 4 entries at 512, 32 at 4096.
		count := uint32(ss / entrySize)
		sectors := uint64(12)
		lay := gpttest.Layout{
			SectorSize: ss, DiskGUID: uuid.MustParse("6a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3"),
			EntryCount: count, FirstUsableLBA: 3, LastUsableLBA: sectors - 3, BackupLBA: sectors - 1,
			Entries: []gpttest.Entry{
				{Index: 1, Type: uuid.MustParse("c12a7328-f81f-11d2-ba4b-00a0c93ec93b"), UUID: uuid.MustParse("11111111-2222-4333-8444-555555555555"), FirstLBA: 3, LastLBA: 5, Name: "esp"},
				{Index: 3, Type: uuid.MustParse("4f68bce3-e8cd-4db1-96e7-fbcaf984b709"), UUID: uuid.MustParse("66666666-7777-4888-9999-aaaaaaaaaaaa"), FirstLBA: 6, LastLBA: 8, Name: "root-😀", Attributes: 1 << 60},
			},
		}
		size := int64(sectors) * int64(ss)
		d := newMemDisk(size)
		if err := gpttest.Write(d, lay); err != nil {
			f.Fatalf("seed table at %d: %v", ss, err)
		}
		clean := d.bytesAt(0, int(size))
		add(clean, 0, 0)
		add(clean, 100, 0)                // grown disk
		add(clean[:size-int64(ss)], 0, 0) // disk smaller than its GPT

		damaged := func(edit func(b []byte)) []byte {
			b := bytes.Clone(clean)
			edit(b)
			return b
		}
		hdr := func(b []byte, lba uint64) []byte { return b[lba*uint64(ss) : (lba+1)*uint64(ss)] }
		last := sectors - 1
		add(damaged(func(b []byte) { hdr(b, 1)[60] ^= 0xff }), 0, 1)                           // primary CRC broken
		add(damaged(func(b []byte) { hdr(b, 1)[60] ^= 0xff; hdr(b, last)[60] ^= 0xff }), 0, 3) // both broken
		add(damaged(func(b []byte) { clear(hdr(b, last)) }), 0, 0)                             // backup missing
		add(damaged(func(b []byte) { putU32(hdr(b, 1), 80, 0xffffffff) }), 0, 0)               // 2^32-1 entries
		add(damaged(func(b []byte) { putU32(hdr(b, 1), 84, 0xffffffff); putU32(hdr(b, last), 84, 0xffffffff) }), 0, 0)
		add(damaged(func(b []byte) { putU64(b[2*ss+40:], 0, 7) }), 0, 0)             // entry 1 overlaps entry 3
		add(damaged(func(b []byte) { putU64(b[2*ss+128*2+40:], 0, 1<<40) }), 0, 0)   // entry past the end
		add(damaged(func(b []byte) { b[446+4] = 0x83 }), 0, 0)                       // MBR partition, no 0xEE
		add(damaged(func(b []byte) { b[446+16+4] = 0x0c }), 0, 0)                    // hybrid MBR
		add(damaged(func(b []byte) { clear(b[510:512]) }), 0, 0)                     // no protective MBR
		add(damaged(func(b []byte) { clear(hdr(b, 1)); clear(hdr(b, last)) }), 0, 0) // protective MBR, no GPT
	}
	add(nil, 0, 0)
	add(make([]byte, 4096), 3, 0)
	mbr := make([]byte, 1024)
	mbr[446+4], mbr[446+8], mbr[446+12], mbr[510], mbr[511] = 0x83, 1, 1, 0x55, 0xaa
	add(mbr, 8, 0)
	return seeds
}
