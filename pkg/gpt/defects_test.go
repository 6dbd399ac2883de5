package gpt

// One test per go-diskfs v1.9.4 defect listed in docs/gpt.md, each showing
// that sprout's wrapper guards it. The tests that need sfdisk, sgdisk,
// systemd-repart or loop devices are in tools_test.go.

import (
	"encoding/binary"
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// Defect 1: go-diskfs's Write ignores the disk size for a table it read, so
// on a grown disk the backup stays at the old end. Encode refuses such a
// table; Relocate moves the backup and raises LastUsableLBA.
func TestDefect1GrownDiskNeedsRelocate(t *testing.T) {
	for _, g := range []struct {
		name string
		ss   int
	}{{"layout-512", 512}, {"layout-4096", 4096}} {
		t.Run(g.name, func(t *testing.T) {
			small := loadImage(t, g.name)
			d := small.clone(64 * mib)
			tab := mustRead(t, d, g.ss)
			if !tab.Grown(d.size) {
				t.Fatal("Grown is false for a 16 MiB table on a 64 MiB disk")
			}
			if _, err := tab.Encode(d.size); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "relocate") {
				t.Fatalf("Encode without Relocate: %v, want ErrInvalid asking to relocate", err)
			}
			tab.Relocate(d.size)
			last := uint64(d.size/int64(g.ss)) - 1
			array := uint64(16384 / g.ss)
			if tab.BackupLBA != last || tab.LastUsableLBA != last-1-array || tab.Grown(d.size) {
				t.Fatalf("after Relocate: backup %d last usable %d; want %d and %d", tab.BackupLBA, tab.LastUsableLBA, last, last-1-array)
			}
			apply(t, d, mustEncode(t, tab, d.size))
			again := mustRead(t, d, g.ss)
			if again.BackupLBA != last || again.BackupInvalid != "" || again.ProtectiveMBRInvalid != "" || again.RecoveredFromBackup {
				t.Errorf("after writing: %+v", again)
			}
			if !reflect.DeepEqual(again.Entries, tab.Entries) {
				t.Error("entries changed by relocation")
			}
			// The old backup at the old end is left alone, as libfdisk does;
			// nothing between the old end and the new backup array is written.
			oldBackup := small.size - int64(g.ss)
			if string(d.bytesAt(oldBackup, g.ss)) != string(small.bytesAt(oldBackup, g.ss)) {
				t.Error("stale backup header at the old end was modified")
			}
		})
	}
}

// Defect 2: go-diskfs looks for 0x55AA at the end of a 4096-byte LBA 0, so
// on 4K-sector disks it never recognises or updates the protective MBR.
// sprout checks bytes 510-511 and always writes bytes 446-511.
func TestDefect2ProtectiveMBROn4KSectors(t *testing.T) {
	small := loadImage(t, "layout-4096")
	if tab := mustRead(t, small, 4096); tab.ProtectiveMBRInvalid != "" {
		t.Fatalf("sfdisk's 4K protective MBR not recognised: %s", tab.ProtectiveMBRInvalid)
	}
	// The size field is read from the 4K sector: a wrong one is damage.
	bad := small.clone(small.size)
	if _, err := bad.WriteAt(le32(1000), 446+12); err != nil {
		t.Fatal(err)
	}
	if tab := mustRead(t, bad, 4096); !strings.Contains(tab.ProtectiveMBRInvalid, "covers 1000 sectors, the disk has 4095") {
		t.Errorf("4K disk with a wrong size field: ProtectiveMBRInvalid %q", tab.ProtectiveMBRInvalid)
	}
	// On a grown disk the record still covers the disk the table was made
	// for: not damage (relocating the backup GPT rewrites it).
	d := small.clone(64 * mib)
	tab := mustRead(t, d, 4096)
	if tab.ProtectiveMBRInvalid != "" {
		t.Errorf("grown 4K disk: ProtectiveMBRInvalid %q", tab.ProtectiveMBRInvalid)
	}
	tab.Relocate(d.size)
	apply(t, d, mustEncode(t, tab, d.size))
	want := append([]byte{0, 0, 2, 0, 0xEE, 0xFF, 0xFF, 0xFF, 1, 0, 0, 0}, le32(16383)...)
	if got := d.bytesAt(446, 16); string(got) != string(want) {
		t.Errorf("protective record % x, want % x", got, want)
	}
	if got := d.bytesAt(510, 2); got[0] != 0x55 || got[1] != 0xAA {
		t.Errorf("boot signature at 510: % x", got)
	}
	if string(d.bytesAt(512, 4096-512)) != string(small.bytesAt(512, 4096-512)) {
		t.Error("bytes 512..4095 of LBA 0 were changed")
	}
	if again := mustRead(t, d, 4096); again.ProtectiveMBRInvalid != "" {
		t.Errorf("after writing: %s", again.ProtectiveMBRInvalid)
	}
}

// Defect 3: go-diskfs truncates the protective record's size to 32 bits
// (2147483647 on a 3 TiB disk) instead of capping it at 0xFFFFFFFF.
func TestDefect3ProtectiveMBRSizeCapped(t *testing.T) {
	cases := []struct {
		name    string
		sectors uint64
		want    uint32
	}{
		{"3 TiB", 3 << 31, 0xFFFFFFFF},
		{"2^32 sectors", 1 << 32, 0xFFFFFFFF},
		{"2^32-1 sectors", 1<<32 - 1, 0xFFFFFFFE},
		{"2^32+1 sectors", 1<<32 + 1, 0xFFFFFFFF},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			size := int64(c.sectors) * 512
			d := newMemDisk(size)
			apply(t, d, mustEncode(t, New(size, 512, uuid.New()), size))
			if got := binary.LittleEndian.Uint32(d.bytesAt(446+12, 4)); got != c.want {
				t.Errorf("size field %#x, want %#x", got, c.want)
			}
		})
	}
	// A small image dd'ed onto a 3 TiB disk and grown.
	d := loadImage(t, "layout-512").clone(3 << 40)
	tab := mustRead(t, d, 512)
	tab.Relocate(d.size)
	apply(t, d, mustEncode(t, tab, d.size))
	if got := binary.LittleEndian.Uint32(d.bytesAt(446+12, 4)); got != 0xFFFFFFFF {
		t.Errorf("grown to 3 TiB: size field %#x", got)
	}
	if again := mustRead(t, d, 512); again.ProtectiveMBRInvalid != "" || again.BackupLBA != 3<<31-1 {
		t.Errorf("grown to 3 TiB, read back: backup %d, %q", again.BackupLBA, again.ProtectiveMBRInvalid)
	}
}

// Defect 4: go-diskfs writes zeros to the protective record's CHS fields;
// the spec and libfdisk use start 00 02 00 and end FF FF FF. The reference
// is the record systemd-repart wrote.
func TestDefect4ProtectiveMBRCHS(t *testing.T) {
	for _, g := range []struct {
		name string
		ss   int
	}{{"repart-512", 512}, {"repart-4096", 4096}} {
		ref := loadImage(t, g.name)
		tab := New(ref.size, g.ss, uuid.New())
		var pmbr []byte
		for _, w := range mustEncode(t, tab, ref.size) {
			if w.What == "protective MBR" {
				pmbr = w.Data
			}
		}
		if len(pmbr) != 66 {
			t.Fatalf("%s: no 66-byte protective MBR write: % x", g.name, pmbr)
		}
		if want := ref.bytesAt(446, 66); string(pmbr) != string(want) {
			t.Errorf("%s: protective MBR\n% x\nsystemd-repart wrote\n% x", g.name, pmbr, want)
		}
		if pmbr[1] != 0 || pmbr[2] != 2 || pmbr[3] != 0 || pmbr[5] != 0xFF || pmbr[6] != 0xFF || pmbr[7] != 0xFF {
			t.Errorf("%s: CHS bytes % x", g.name, pmbr[1:8])
		}
	}
}

// Defect 5: go-diskfs's GetPartitionTable returns the protective MBR as a
// DOS table when the GPT cannot be read. sprout only calls gpt.Read and
// reports what it found.
func TestDefect5NoSilentMBRFallback(t *testing.T) {
	dos := loadImage(t, "dos-512")
	_, err := Read(dos, dos.size, 512)
	if !errors.Is(err, ErrOtherLabel) || !strings.Contains(err.Error(), "MBR with 2 partition records") {
		t.Errorf("sfdisk DOS image: %v, want ErrOtherLabel naming the MBR", err)
	}

	blank := newMemDisk(16 * mib)
	if _, err := Read(blank, blank.size, 512); !errors.Is(err, ErrNoLabel) {
		t.Errorf("zeroed disk: %v, want ErrNoLabel", err)
	}

	// A DOS table written over a GPT disk: the MBR is the label (as for
	// libfdisk and the kernel), the surviving GPT headers are stale.
	stale := loadImage(t, "layout-512")
	stale.WriteAt(dos.bytesAt(0, 512), 0)
	_, err = Read(stale, stale.size, 512)
	if !errors.Is(err, ErrOtherLabel) || !strings.Contains(err.Error(), "leftover GPT headers") {
		t.Errorf("DOS MBR over an old GPT: %v", err)
	}

	// Protective MBR but both GPT headers gone: corrupt, not "no label"
	// and not a one-partition DOS disk.
	gone := loadImage(t, "layout-512")
	gone.WriteAt(make([]byte, 512), 512)
	gone.WriteAt(make([]byte, 512), gone.size-512)
	if _, err := Read(gone, gone.size, 512); !errors.Is(err, ErrCorrupt) {
		t.Errorf("protective MBR without GPT: %v, want ErrCorrupt", err)
	}
}

// Defect 6: go-diskfs writes overlapping entries and entries that reach
// into the backup array. Validate (run by Encode) refuses them.
func TestDefect6ValidateRefusesOverlapsAndBounds(t *testing.T) {
	base := func() *Table {
		tab := New(64*mib, 512, uuid.New())
		tab.Entries = []Entry{
			{Index: 1, Type: uuid.New(), UUID: uuid.New(), FirstLBA: 2048, LastLBA: 4095},
			{Index: 3, Type: uuid.New(), UUID: uuid.New(), FirstLBA: 8192, LastLBA: 16383},
		}
		return tab
	}
	cases := []struct {
		name string
		edit func(t *Table)
		want string
	}{
		{"overlap", func(t *Table) {
			t.Entries = append(t.Entries, Entry{Index: 10, Type: uuid.New(), FirstLBA: 4000, LastLBA: 5000})
		}, "entry 10 (LBA 4000-5000) overlaps entry 1"},
		{"into the backup array", func(t *Table) {
			t.Entries = append(t.Entries, Entry{Index: 11, Type: uuid.New(), FirstLBA: t.LastUsableLBA - 10, LastLBA: t.LastUsableLBA + 20})
		}, "entry 11: last LBA 131058 is past the last usable LBA 131038"},
		{"before first usable", func(t *Table) { t.Entries[0].FirstLBA = 34 }, "entry 1: first LBA 34 is before the first usable LBA 2048"},
		{"ends before start", func(t *Table) { t.Entries[1].LastLBA = 8000 }, "entry 3: first LBA 8192 is after last LBA 8000"},
		{"slot 0", func(t *Table) { t.Entries[0].Index = 0 }, "entry 0: slot index outside 1..128"},
		{"slot past count", func(t *Table) { t.Entries[0].Index = 129 }, "entry 129: slot index outside 1..128"},
		{"duplicate slot", func(t *Table) { t.Entries[1].Index = 1 }, "entry 1: slot used twice"},
		{"zero type", func(t *Table) { t.Entries[1].Type = uuid.Nil }, "entry 3: partition type GUID is zero"},
		{"last usable over backup array", func(t *Table) { t.LastUsableLBA = t.BackupLBA - 32 }, "reaches the backup entry array"},
		{"first usable over primary array", func(t *Table) { t.FirstUsableLBA = 33 }, "overlaps the usable area starting at LBA 33"},
		{"first after last usable", func(t *Table) { t.FirstUsableLBA = t.LastUsableLBA + 1 }, "is after last usable LBA"},
		{"disk shrank", func(t *Table) { t.BackupLBA++ }, "beyond the disk's last LBA"},
		{"entry size", func(t *Table) { t.EntrySize = 256 }, "entry size 256"},
		{"entry count", func(t *Table) { t.EntryCount = 0xFFFFFFFF }, "entry count 4294967295 exceeds"},
		{"sector size", func(t *Table) { t.SectorSize = 520 }, "sector size 520"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab := base()
			if err := tab.Validate(64 * mib); err != nil {
				t.Fatalf("base table invalid: %v", err)
			}
			c.edit(tab)
			err := tab.Validate(64 * mib)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate: %v, want ErrInvalid with %q", err, c.want)
			}
			if w, err := tab.Encode(64 * mib); err == nil || w != nil {
				t.Fatalf("Encode accepted the table (%d writes)", len(w))
			}
		})
	}
}

// Defect 7: go-diskfs counts a name's runes, not its UTF-16 code units, and
// panics (index out of range) when 36 runes need more than 36 units.
func TestDefect7NameLengthInUTF16Units(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
	}{
		{strings.Repeat("a", 35) + "😀", false}, // 36 runes, 37 units: go-diskfs panics
		{strings.Repeat("😀", 36), false},       // 36 runes, 72 units: go-diskfs panics
		{strings.Repeat("a", 37), false},       // 37 units
		{strings.Repeat("a", 34) + "😀", true},  // exactly 36 units
		{strings.Repeat("日", 36), true},        // BMP, 36 units
		{"bad\x00name", false},                 // NUL would end the name early
		{"bad\xffutf8", false},                 // would be stored as U+FFFD
	}
	for _, c := range cases {
		tab := New(64*mib, 512, uuid.New())
		tab.Entries = []Entry{{Index: 1, Type: uuid.New(), UUID: uuid.New(), FirstLBA: 2048, LastLBA: 4095, Name: c.name}}
		err := tab.Validate(64 * mib)
		if c.ok != (err == nil) {
			t.Errorf("name %q: Validate = %v", c.name, err)
			continue
		}
		w, err := tab.Encode(64 * mib) // must not panic
		if c.ok != (err == nil) {
			t.Errorf("name %q: Encode = %v", c.name, err)
			continue
		}
		if c.ok {
			d := newMemDisk(64 * mib)
			apply(t, d, w)
			if got := mustRead(t, d, 512).Entries[0].Name; got != c.name {
				t.Errorf("name %q read back as %q", c.name, got)
			}
		}
	}
}

// Defect 8: go-diskfs allocates entry count × entry size bytes for a
// CRC-valid header, so 0xFFFFFFFF entries kill the process (a Go fatal
// error, not a recoverable panic), and it rejects entry sizes other than
// 128 only after reading. sprout refuses such headers before reading the
// array, with little allocation.
func TestDefect8AbsurdEntryCountBoundedAllocation(t *testing.T) {
	cases := []struct {
		name        string
		count, size uint32
		want        string
	}{
		{"count 0xFFFFFFFF", 0xFFFFFFFF, 128, "entry count 4294967295 exceeds the supported maximum"},
		{"count 0x100000", 0x100000, 128, "entry count 1048576 exceeds"},
		{"entry size 256", 64, 256, "entry size 256 is not supported"},
		{"entry size 0xFFFFFFFF", 128, 0xFFFFFFFF, "entry size 4294967295 is not supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := loadImage(t, "layout-512")
			for _, lba := range []uint64{1, uint64(d.size)/512 - 1} {
				patchHeader(d, 512, lba, func(h []byte) { putU32(h, 80, c.count); putU32(h, 84, c.size) })
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := Read(d, d.size, 512)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "LBA 1") {
				t.Fatalf("Read: %v, want ErrCorrupt with %q at LBA 1", err, c.want)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
				t.Errorf("Read allocated %d bytes refusing the header; want < 64 KiB", n)
			}
		})
	}
}

// Defect 9: go-diskfs's Read never looks at the backup while the primary is
// valid, so a damaged backup goes unnoticed. sprout checks it and reports
// it in BackupInvalid; Encode writes a correct one.
func TestDefect9BackupCorruptionReported(t *testing.T) {
	const last = 16*mib/512 - 1
	cases := []struct {
		name   string
		damage func(d *memDisk)
		want   string
	}{
		{"header CRC", func(d *memDisk) { d.WriteAt([]byte{0x42}, last*512+60) }, "backup GPT at LBA 32767: header CRC mismatch"},
		{"entry array CRC", func(d *memDisk) { d.WriteAt([]byte{0x42}, (last-32)*512+200) }, "entry array at LBA 32735: CRC mismatch"},
		{"header wiped", func(d *memDisk) { d.WriteAt(make([]byte, 512), last*512) }, "no GPT signature"},
		{"different table", func(d *memDisk) {
			patchHeader(d, 512, last, func(h []byte) { h[56] ^= 1 })
		}, "differs from the primary (disk GUID)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			orig := loadImage(t, "layout-512")
			d := orig.clone(orig.size)
			c.damage(d)
			tab := mustRead(t, d, 512)
			if tab.RecoveredFromBackup || !strings.Contains(tab.BackupInvalid, c.want) {
				t.Fatalf("BackupInvalid %q (recovered %v), want %q", tab.BackupInvalid, tab.RecoveredFromBackup, c.want)
			}
			apply(t, d, mustEncode(t, tab, d.size))
			if off := d.firstDifference(orig); off >= 0 {
				t.Errorf("repaired image differs from the original at byte %d", off)
			}
		})
	}
}

// Defect 10: go-diskfs's Write fills in GUIDs and sizes in the Partition
// structs it is given. Encode hands it fresh copies, so t never changes and
// encoding twice gives the same bytes.
func TestDefect10EncodeDoesNotMutateTable(t *testing.T) {
	tab := mustRead(t, loadImage(t, "layout-512"), 512)
	tab.Entries = append(tab.Entries, Entry{Index: 4, Type: uuid.New(), FirstLBA: 24576, LastLBA: 26623}) // zero UUID on purpose
	before := tab.Clone()
	first := mustEncode(t, tab, 16*mib)
	if !reflect.DeepEqual(tab, before) {
		t.Fatalf("Encode changed the table:\n%+v\nwas\n%+v", tab, before)
	}
	first[0].Data[0] ^= 0xFF // the caller owns the returned buffers
	second := mustEncode(t, tab, 16*mib)
	first[0].Data[0] ^= 0xFF
	if !reflect.DeepEqual(first, second) {
		t.Error("two Encodes of the same table differ")
	}
}

func le32(v uint32) []byte {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, v)
	return b
}
