package gpt

// One test per go-diskfs v1.9.4 defect listed in docs/gpt.md. Each states
// one property and checks it twice: on plain go-diskfs, where it must
// fail (the defect is still there in the pinned version), and on sprout's
// wrapper, where it must hold (the guard works). If the plain half starts
// passing after an upgrade, upstream fixed the defect: re-check the guard
// and docs/gpt.md before relaxing anything. The tests that need sfdisk,
// sgdisk, systemd-repart or loop devices are in tools_test.go.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/partition"
	diskfs "github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/google/uuid"
	"golang.org/x/sys/unix"
)

// plainAndGuarded checks property on plain go-diskfs (must fail) and on
// sprout (must hold).
func plainAndGuarded(t *testing.T, property string, plain, guarded func() error) {
	t.Helper()
	if err := plain(); err == nil {
		t.Errorf("plain go-diskfs now satisfies %q: upstream changed; re-check the guard and docs/gpt.md", property)
	} else {
		t.Logf("plain go-diskfs fails %q: %v", property, err)
	}
	if err := guarded(); err != nil {
		t.Errorf("sprout fails %q: %v", property, err)
	}
}

// Defect 1: go-diskfs's Write ignores the disk size for a table it read,
// so on a grown disk the backup stays at the old end. Guard: Relocate
// (the plan calls it on a grown disk), gt.Resize in Encode, and Validate
// refusing a table whose backup is not at the last LBA.
func TestDefect1GrownDiskNeedsRelocate(t *testing.T) {
	for _, g := range []struct {
		name string
		ss   int
	}{{"layout-512", 512}, {"layout-4096", 4096}} {
		t.Run(g.name, func(t *testing.T) {
			small := loadImage(t, g.name)
			last := uint64(64*mib/g.ss) - 1
			backupAtEnd := func(d *memDisk) error {
				h, err := parseHeader(d.bytesAt(int64(last)*int64(g.ss), g.ss))
				if err != nil {
					return fmt.Errorf("no valid header at the last LBA %d: %w", last, err)
				}
				if h.myLBA != last {
					return fmt.Errorf("the header at the last LBA says it is at LBA %d", h.myLBA)
				}
				return nil
			}
			plainAndGuarded(t, "a table written to a grown disk has its backup at the disk's last LBA",
				func() error {
					d := small.clone(64 * mib)
					gt := diskfsRead(t, d, g.ss)
					if err := gt.Write(&memFile{d: d}, d.size); err != nil {
						return err
					}
					return backupAtEnd(d)
				},
				func() error {
					d := small.clone(64 * mib)
					tab := mustRead(t, d, g.ss)
					if !tab.Grown(d.size) {
						return errors.New("Grown is false for a 16 MiB table on a 64 MiB disk")
					}
					if _, err := tab.Encode(d.size); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "relocate") {
						return fmt.Errorf("Encode without Relocate: %v, want ErrInvalid asking to relocate", err)
					}
					tab.Relocate(d.size)
					array := uint64(16384 / g.ss)
					if tab.BackupLBA != last || tab.LastUsableLBA != last-1-array || tab.Grown(d.size) {
						return fmt.Errorf("after Relocate: backup %d last usable %d; want %d and %d", tab.BackupLBA, tab.LastUsableLBA, last, last-1-array)
					}
					apply(t, d, mustEncode(t, tab, d.size))
					again := mustRead(t, d, g.ss)
					if again.BackupInvalid != "" || again.ProtectiveMBRInvalid != "" || again.RecoveredFromBackup || again.LastUsableLBA != tab.LastUsableLBA {
						return fmt.Errorf("after writing: %+v", again)
					}
					if !reflect.DeepEqual(again.Entries, tab.Entries) {
						return errors.New("entries changed by relocation")
					}
					// The old backup at the old end is left alone, as libfdisk
					// does: nothing but the new GPT areas is written.
					oldBackup := small.size - int64(g.ss)
					if string(d.bytesAt(oldBackup, g.ss)) != string(small.bytesAt(oldBackup, g.ss)) {
						return errors.New("stale backup header at the old end was modified")
					}
					return backupAtEnd(d)
				})
		})
	}
}

// Defect 2: go-diskfs looks for 0x55AA at the end of LBA 0, which on
// 4096-byte sectors is the wrong place: it never recognises the protective
// MBR there, so on a grown 4K disk it never updates it. Guard: Read
// classifies LBA 0 itself (bytes 510-511) and Encode sets
// gt.ProtectiveMBR.
func TestDefect2ProtectiveMBROn4KSectors(t *testing.T) {
	small := loadImage(t, "layout-4096")
	const sectors = 64 * mib / 4096
	covers := func(d *memDisk, recognised bool) error {
		if !recognised {
			return errors.New("sfdisk's protective MBR is not recognised")
		}
		return checkProtectiveMBR(d.bytesAt(446, 66), sectors)
	}
	plainAndGuarded(t, "on a grown 4K disk the protective MBR is recognised and then covers the whole disk",
		func() error {
			d := small.clone(64 * mib)
			gt := diskfsRead(t, d, 4096)
			gt.Resize(uint64(d.size))
			if err := gt.Write(&memFile{d: d}, d.size); err != nil {
				return err
			}
			return covers(d, gt.ProtectiveMBR)
		},
		func() error {
			d := small.clone(64 * mib)
			tab := mustRead(t, d, 4096)
			if tab.ProtectiveMBRInvalid != "" {
				return fmt.Errorf("grown 4K disk: ProtectiveMBRInvalid %q", tab.ProtectiveMBRInvalid)
			}
			tab.Relocate(d.size)
			apply(t, d, mustEncode(t, tab, d.size))
			if string(d.bytesAt(512, 4096-512)) != string(small.bytesAt(512, 4096-512)) {
				return errors.New("bytes 512..4095 of LBA 0 were changed")
			}
			if again := mustRead(t, d, 4096); again.ProtectiveMBRInvalid != "" {
				return fmt.Errorf("after writing: %s", again.ProtectiveMBRInvalid)
			}
			return covers(d, true)
		})

	// The size field is read from the 4K sector: a wrong one is damage.
	bad := small.clone(small.size)
	bad.WriteAt(le32(1000), 446+12)
	if tab := mustRead(t, bad, 4096); !strings.Contains(tab.ProtectiveMBRInvalid, "covers 1000 sectors, the disk has 4095") {
		t.Errorf("4K disk with a wrong size field: ProtectiveMBRInvalid %q", tab.ProtectiveMBRInvalid)
	}
}

// Defect 3: go-diskfs truncates the protective record's size to 32 bits
// (0x7FFFFFFF on a 3 TiB disk) instead of capping it at 0xFFFFFFFF.
// Guard: fixProtectiveRecord.
func TestDefect3ProtectiveMBRSizeCapped(t *testing.T) {
	const size = 3 << 40
	sizeField := func(d *memDisk) error {
		if n := binary.LittleEndian.Uint32(d.bytesAt(446+12, 4)); n != math.MaxUint32 {
			return fmt.Errorf("size field %#x on a 3 TiB disk, want 0xffffffff", n)
		}
		return nil
	}
	plainAndGuarded(t, "a 16 MiB image grown to 3 TiB gets a protective record capped at 0xFFFFFFFF sectors",
		func() error {
			d := loadImage(t, "layout-512").clone(size)
			gt := diskfsRead(t, d, 512)
			gt.Resize(size)
			if err := gt.Write(&memFile{d: d}, d.size); err != nil {
				return err
			}
			return sizeField(d)
		},
		func() error {
			d := loadImage(t, "layout-512").clone(size)
			tab := mustRead(t, d, 512)
			tab.Relocate(d.size)
			apply(t, d, mustEncode(t, tab, d.size))
			if again := mustRead(t, d, 512); again.ProtectiveMBRInvalid != "" || again.BackupLBA != 3<<31-1 {
				return fmt.Errorf("read back: backup %d, %q", again.BackupLBA, again.ProtectiveMBRInvalid)
			}
			return sizeField(d)
		})

	// New tables around the 32-bit boundary.
	for _, c := range []struct {
		sectors uint64
		want    uint32
	}{{1 << 32, 0xFFFFFFFF}, {1<<32 - 1, 0xFFFFFFFE}, {1<<32 + 1, 0xFFFFFFFF}} {
		size := int64(c.sectors) * 512
		d := newMemDisk(size)
		apply(t, d, mustEncode(t, New(size, 512, uuid.New()), size))
		if got := binary.LittleEndian.Uint32(d.bytesAt(446+12, 4)); got != c.want {
			t.Errorf("%d sectors: size field %#x, want %#x", c.sectors, got, c.want)
		}
	}
}

// Defect 4: go-diskfs writes zeros to the protective record's CHS fields;
// the spec and libfdisk use start 00 02 00 and end FF FF FF. The reference
// is the record systemd-repart wrote. Guard: fixProtectiveRecord.
func TestDefect4ProtectiveMBRCHS(t *testing.T) {
	for _, g := range []struct {
		name string
		ss   int
	}{{"repart-512", 512}, {"repart-4096", 4096}} {
		t.Run(g.name, func(t *testing.T) {
			ref := loadImage(t, g.name)
			want := ref.bytesAt(446, 66)
			same := func(got []byte) error {
				if string(got) != string(want) {
					return fmt.Errorf("protective MBR\n% x\nsystemd-repart wrote\n% x", got, want)
				}
				return nil
			}
			plainAndGuarded(t, "the protective MBR of a new table is the one systemd-repart writes",
				func() error {
					d := newMemDisk(ref.size)
					gt := &diskfs.Table{LogicalSectorSize: g.ss, PhysicalSectorSize: g.ss, ProtectiveMBR: true}
					if err := gt.Write(&memFile{d: d}, d.size); err != nil {
						return err
					}
					return same(d.bytesAt(446, 66))
				},
				func() error {
					for _, w := range mustEncode(t, New(ref.size, g.ss, uuid.New()), ref.size) {
						if w.What == "protective MBR" {
							return same(w.Data)
						}
					}
					return errors.New("no protective MBR write")
				})
		})
	}
}

// Defect 5: go-diskfs reads a disk whose GPT is unreadable as a DOS disk
// with one 0xEE partition (partition.Read, and GetPartitionTable and
// diskfs.Open on top of it), without an error. Guard: sprout calls only
// its own Read, which names what it found.
func TestDefect5NoSilentMBRFallback(t *testing.T) {
	gone := loadImage(t, "layout-512")
	gone.WriteAt(make([]byte, 512), 512)
	gone.WriteAt(make([]byte, 512), gone.size-512)
	plainAndGuarded(t, "a protective MBR without a readable GPT is an error",
		func() error {
			pt, err := partition.Read(&memFile{d: gone}, 512, 512)
			if err == nil {
				return fmt.Errorf("read as a %s table without an error", pt.Type())
			}
			return nil
		},
		func() error {
			if _, err := Read(gone, gone.size, 512); !errors.Is(err, ErrCorrupt) {
				return fmt.Errorf("Read: %v, want ErrCorrupt", err)
			}
			return nil
		})

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
}

// Defect 6: go-diskfs checks no LBAs: it writes overlapping entries and
// entries that reach into the backup array, and reads such tables
// without complaint. Guard: Validate (run by Encode) and Read's checks.
func TestDefect6ValidateRefusesOverlapsAndBounds(t *testing.T) {
	plainAndGuarded(t, "a table with overlapping entries is neither written nor read",
		func() error {
			d := loadImage(t, "layout-512")
			gt := diskfsRead(t, d, 512)
			gt.Partitions = append(gt.Partitions, &diskfs.Partition{Index: 10, Start: 2048, End: 4095, Type: diskfs.LinuxFilesystem})
			if err := gt.Write(&memFile{d: d}, d.size); err == nil {
				if _, err := diskfs.Read(&memFile{d: d}, 512, 512); err == nil {
					return errors.New("written and read back without an error")
				}
			}
			return nil
		},
		func() error {
			tab := mustRead(t, loadImage(t, "layout-512"), 512)
			tab.Entries = append(tab.Entries, Entry{Index: 10, Type: uuid.New(), FirstLBA: 2048, LastLBA: 4095})
			if _, err := tab.Encode(16 * mib); !errors.Is(err, ErrInvalid) {
				return fmt.Errorf("Encode: %v, want ErrInvalid", err)
			}
			d := loadImage(t, "layout-512")
			patchEntries(d, 512, func(a []byte) { putU64(a[0:], 40, 6144) }) // slot 1 runs into slot 5
			if _, err := Read(d, d.size, 512); !errors.Is(err, ErrCorrupt) {
				return fmt.Errorf("Read: %v, want ErrCorrupt", err)
			}
			return nil
		})

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

// Defect 7: go-diskfs counts a name's runes, not its UTF-16 code units,
// and panics (index out of range) when 36 runes need more than 36 units.
// Guard: Validate's checkName.
func TestDefect7NameLengthInUTF16Units(t *testing.T) {
	long := strings.Repeat("a", 35) + "😀" // 36 runes, 37 units
	plainAndGuarded(t, "a name of 36 runes and 37 UTF-16 units is an error, not a panic",
		func() (err error) {
			d := loadImage(t, "layout-512")
			gt := diskfsRead(t, d, 512)
			gt.Partitions[0].Name = long
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("panic: %v", p)
				}
			}()
			if gt.Write(&memFile{d: d}, d.size) == nil {
				return errors.New("written without an error")
			}
			return nil
		},
		func() error {
			tab := mustRead(t, loadImage(t, "layout-512"), 512)
			tab.Entries[0].Name = long
			if _, err := tab.Encode(16 * mib); !errors.Is(err, ErrInvalid) {
				return fmt.Errorf("Encode: %v, want ErrInvalid", err)
			}
			return nil
		})

	cases := []struct {
		name string
		ok   bool
	}{
		{strings.Repeat("😀", 36), false},      // 36 runes, 72 units: go-diskfs panics
		{strings.Repeat("a", 37), false},      // 37 units
		{strings.Repeat("a", 34) + "😀", true}, // exactly 36 units
		{strings.Repeat("日", 36), true},       // BMP, 36 units
		{"bad\x00name", false},                // NUL would end the name early
		{"bad\xffutf8", false},                // would be stored as U+FFFD
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
// CRC-valid header, so 0xFFFFFFFF entries kill the process: a Go fatal
// error, which no recover catches. Guard: Read checks both headers itself
// before reading any array, and refuses with little allocation. (This is
// one of the reasons sprout reads with its own decoder: docs/gpt.md.)
func TestDefect8AbsurdEntryCountBoundedAllocation(t *testing.T) {
	if os.Getenv("SPROUT_GPT_DEFECT8_CHILD") == "1" {
		// The child: go-diskfs reads the crafted header with 4 GiB of
		// address space, so its allocation fails at once instead of
		// touching memory.
		if err := unix.Setrlimit(unix.RLIMIT_AS, &unix.Rlimit{Cur: 4 << 30, Max: 4 << 30}); err != nil {
			fmt.Printf("setrlimit: %v\n", err)
			os.Exit(3)
		}
		d := hugeCountImage(t, 0xFFFFFFFF, 128)
		_, err := diskfs.Read(&memFile{d: d}, 512, 512)
		fmt.Printf("go-diskfs returned: %v\n", err)
		os.Exit(0)
	}
	plainAndGuarded(t, "a header claiming 0xFFFFFFFF entries is refused and the process lives",
		func() error {
			cmd := exec.Command(os.Args[0], "-test.run=^TestDefect8AbsurdEntryCountBoundedAllocation$", "-test.count=1")
			cmd.Env = append(os.Environ(), "SPROUT_GPT_DEFECT8_CHILD=1")
			out, err := cmd.CombinedOutput()
			switch {
			case err == nil:
				return nil
			case strings.Contains(string(out), "fatal error: out of memory"):
				line, _, _ := strings.Cut(string(out), "\n")
				return fmt.Errorf("the process died (%v): %s", err, line)
			}
			t.Fatalf("the child process failed otherwise: %v\n%s", err, out)
			return nil
		},
		func() error {
			_, err := Read(hugeCountImage(t, 0xFFFFFFFF, 128), 16*mib, 512)
			if !errors.Is(err, ErrCorrupt) {
				return fmt.Errorf("Read: %v, want ErrCorrupt", err)
			}
			return nil
		})

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
			d := hugeCountImage(t, c.count, c.size)
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

// hugeCountImage is layout-512 with both headers claiming count entries
// of size bytes (CRCs fixed).
func hugeCountImage(t *testing.T, count, size uint32) *memDisk {
	d := loadImage(t, "layout-512")
	for _, lba := range []uint64{1, uint64(d.size)/512 - 1} {
		patchHeader(d, 512, lba, func(h []byte) { putU32(h, 80, count); putU32(h, 84, size) })
	}
	return d
}

// Defect 9: go-diskfs's Read never looks at the backup while the primary
// is valid, so a damaged backup goes unnoticed. Guard: Read checks both
// copies and reports the backup in BackupInvalid; the plan then rewrites
// the table (Encode, go-diskfs writing both copies).
func TestDefect9BackupCorruptionReported(t *testing.T) {
	const last = 16*mib/512 - 1
	damagedHeader := func() *memDisk {
		d := loadImage(t, "layout-512")
		d.WriteAt([]byte{0x42}, last*512+60)
		return d
	}
	plainAndGuarded(t, "a damaged backup header is reported when the primary is fine",
		func() error {
			gt, err := diskfs.Read(&memFile{d: damagedHeader()}, 512, 512)
			if err == nil && !gt.RecoveredFromBackup {
				return errors.New("Read returned the table without an error, and its Table has no field for backup damage")
			}
			return nil
		},
		func() error {
			if tab := mustRead(t, damagedHeader(), 512); tab.BackupInvalid == "" {
				return errors.New("BackupInvalid is empty")
			}
			return nil
		})

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
// structs it is given. Guard: Encode hands it fresh structs on every call,
// so the table never changes and encoding twice gives the same bytes.
func TestDefect10EncodeDoesNotMutateTable(t *testing.T) {
	plainAndGuarded(t, "writing a table leaves the caller's partitions as they were",
		func() error {
			d := loadImage(t, "layout-512")
			gt := diskfsRead(t, d, 512)
			p := &diskfs.Partition{Index: 4, Start: 24576, End: 26623, Type: diskfs.LinuxFilesystem}
			gt.Partitions = append(gt.Partitions, p)
			if err := gt.Write(&memFile{d: d}, d.size); err != nil {
				return err
			}
			if p.GUID != "" || p.Size != 0 {
				return fmt.Errorf("the partition now has GUID %q and size %d", p.GUID, p.Size)
			}
			return nil
		},
		func() error {
			tab := mustRead(t, loadImage(t, "layout-512"), 512)
			tab.Entries = append(tab.Entries, Entry{Index: 4, Type: uuid.New(), FirstLBA: 24576, LastLBA: 26623}) // zero UUID on purpose
			before := tab.Clone()
			first := mustEncode(t, tab, 16*mib)
			if !reflect.DeepEqual(tab, before) {
				return fmt.Errorf("Encode changed the table:\n%+v\nwas\n%+v", tab, before)
			}
			first[0].Data[0] ^= 0xFF // the caller owns the returned buffers
			second := mustEncode(t, tab, 16*mib)
			first[0].Data[0] ^= 0xFF
			if !reflect.DeepEqual(first, second) {
				return errors.New("two Encodes of the same table differ")
			}
			return nil
		})
}

// Defect 11: a table go-diskfs creates has its first usable LBA right
// after the entry array (34 at 512-byte sectors); libfdisk, so
// systemd-repart, puts it at 1 MiB, and New does too. go-diskfs can be
// given the first usable LBA only by reading a header that has it. Guard:
// Encode sets the field in both headers (setHeaderField).
func TestDefect11NewTableFirstUsableLBA(t *testing.T) {
	for _, g := range []struct {
		name string
		ss   int
	}{{"repart-512", 512}, {"repart-4096", 4096}} {
		t.Run(g.name, func(t *testing.T) {
			ref := loadImage(t, g.name)
			repart := mustRead(t, ref, g.ss)
			gptAreas := func(d *memDisk) error {
				array := int64(16384)
				for _, r := range [][2]int64{{int64(g.ss), int64(g.ss) + array}, {ref.size - int64(g.ss) - array, ref.size}} {
					if got, want := d.bytesAt(r[0], int(r[1]-r[0])), ref.bytesAt(r[0], int(r[1]-r[0])); string(got) != string(want) {
						h, _ := parseHeader(d.bytesAt(int64(g.ss), g.ss))
						return fmt.Errorf("bytes %d-%d differ from systemd-repart's (first usable LBA %d, systemd-repart's %d)", r[0], r[1], h.firstUsable, repart.FirstUsableLBA)
					}
				}
				return nil
			}
			plainAndGuarded(t, "a new table's headers and arrays are the bytes systemd-repart --empty=force writes",
				func() error {
					d := newMemDisk(ref.size)
					gt := &diskfs.Table{LogicalSectorSize: g.ss, PhysicalSectorSize: g.ss, GUID: strings.ToUpper(repart.DiskGUID.String())}
					gt.Partitions = repart.diskfsPartitions()
					if err := gt.Write(&memFile{d: d}, d.size); err != nil {
						return err
					}
					return gptAreas(d)
				},
				func() error {
					tab := New(ref.size, g.ss, repart.DiskGUID)
					tab.Entries = repart.Entries
					d := newMemDisk(ref.size)
					apply(t, d, mustEncode(t, tab, d.size))
					if off := ref.firstDifference(d); off >= 0 {
						return fmt.Errorf("New+Encode differs from systemd-repart's image at byte %d", off)
					}
					return gptAreas(d)
				})
		})
	}
}

// Defect 12: go-diskfs writes the primary entry array at LBA 2 whatever
// the table it read says (sgdisk --move-main-table moves it, on boards
// whose boot loader sits at LBA 2 and on). Guard: Encode writes the array
// where the table has it and sets the header's field to match.
func TestDefect12MovedEntryArrayStays(t *testing.T) {
	orig := loadImage(t, "moved-512")
	// A boot loader where the array normally is (sgdisk left a copy of
	// the old array there, identical to what go-diskfs would write).
	orig.WriteAt(bytes.Repeat([]byte("bootloader"), 62*512/10), 1024)
	kept := func(d *memDisk) error {
		if got, want := d.bytesAt(1024, 64*512-1024), orig.bytesAt(1024, 64*512-1024); string(got) != string(want) {
			return errors.New("LBA 2-63, before the moved entry array, were written")
		}
		h, err := parseHeader(d.bytesAt(512, 512))
		if err != nil || h.entriesLBA != 64 {
			return fmt.Errorf("primary header: entry array at LBA %d (%v), want 64", h.entriesLBA, err)
		}
		return nil
	}
	plainAndGuarded(t, "rewriting a table whose entry array is at LBA 64 leaves LBA 2-63 alone",
		func() error {
			d := orig.clone(orig.size)
			gt := diskfsRead(t, d, 512)
			if err := gt.Write(&memFile{d: d}, d.size); err != nil {
				return err
			}
			return kept(d)
		},
		func() error {
			d := orig.clone(64 * mib)
			tab := mustRead(t, d, 512)
			tab.Relocate(d.size)
			apply(t, d, mustEncode(t, tab, d.size))
			if again := mustRead(t, d, 512); again.EntriesLBA != 64 || again.BackupInvalid != "" {
				return fmt.Errorf("read back: entries at LBA %d, backup problem %q", again.EntriesLBA, again.BackupInvalid)
			}
			return kept(d)
		})
}

// go-diskfs cannot serve the reading direction: its Table keeps the first
// usable LBA, the entry count and the entry array's LBA in unexported
// fields with no accessor, so two disks that differ in where partitions
// may start read the same through its API, and the planner could not
// place a partition as libfdisk does (docs/gpt.md, "Reading"). With
// defects 8 and 9 this is why Read is sprout's own.
func TestReadDirectionNeedsWhatDiskfsHides(t *testing.T) {
	at2048 := loadImage(t, "repart-512")
	at34 := at2048.clone(at2048.size)
	for _, lba := range []uint64{1, uint64(at34.size)/512 - 1} {
		patchHeader(at34, 512, lba, func(h []byte) { putU64(h, 40, 34) })
	}
	plainAndGuarded(t, "a reader tells a table whose usable area starts at LBA 34 from one where it starts at 2048",
		func() error {
			a, b := diskfsExported(diskfsRead(t, at2048, 512)), diskfsExported(diskfsRead(t, at34, 512))
			if reflect.DeepEqual(a, b) {
				return fmt.Errorf("everything go-diskfs exports is the same for both: %+v", a)
			}
			return nil
		},
		func() error {
			if a, b := mustRead(t, at2048, 512).FirstUsableLBA, mustRead(t, at34, 512).FirstUsableLBA; a != 2048 || b != 34 {
				return fmt.Errorf("first usable LBA %d and %d, want 2048 and 34", a, b)
			}
			return nil
		})
}

// diskfsExported is everything a go-diskfs Table tells its caller: its
// exported fields and the results of its methods.
func diskfsExported(gt *diskfs.Table) map[string]any {
	return map[string]any{
		"GUID": gt.GUID, "LogicalSectorSize": gt.LogicalSectorSize, "PhysicalSectorSize": gt.PhysicalSectorSize,
		"ProtectiveMBR": gt.ProtectiveMBR, "RecoveredFromBackup": gt.RecoveredFromBackup, "Partitions": gt.Partitions,
		"LastDataSector()": gt.LastDataSector(), "TotalSize()": gt.TotalSize(), "UUID()": gt.UUID(), "Type()": gt.Type(),
		"GetPartitions()": gt.GetPartitions(),
	}
}

func diskfsRead(t *testing.T, d *memDisk, ss int) *diskfs.Table {
	t.Helper()
	gt, err := diskfs.Read(&memFile{d: d}, ss, ss)
	if err != nil {
		t.Fatal(err)
	}
	return gt
}

// memFile is a backend.WritableFile over a memDisk.
type memFile struct {
	d   *memDisk
	pos int64
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error)  { return f.d.ReadAt(p, off) }
func (f *memFile) WriteAt(p []byte, off int64) (int, error) { return f.d.WriteAt(p, off) }
func (f *memFile) Read(p []byte) (int, error) {
	n, err := f.d.ReadAt(p, f.pos)
	f.pos += int64(n)
	return n, err
}
func (f *memFile) Stat() (fs.FileInfo, error) { return nil, errors.ErrUnsupported }
func (f *memFile) Close() error               { return nil }
func (f *memFile) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		f.pos = off
	case io.SeekCurrent:
		f.pos += off
	case io.SeekEnd:
		f.pos = f.d.size + off
	}
	return f.pos, nil
}

func le32(v uint32) []byte {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, v)
	return b
}
