package gpt

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// goldenImages are the reference images in testdata (see make.sh):
// tables written by sfdisk(+sgdisk) and by systemd-repart 252.
var goldenImages = []struct {
	name       string
	sectorSize int
	entriesLBA uint64
}{
	{"layout-512", 512, 2},
	{"layout-4096", 4096, 2},
	{"repart-512", 512, 2},
	{"repart-4096", 4096, 2},
	{"moved-512", 512, 64},
}

func TestReadAgreesWithSfdisk(t *testing.T) {
	for _, g := range goldenImages {
		t.Run(g.name, func(t *testing.T) {
			d := loadImage(t, g.name)
			tab := mustRead(t, d, g.sectorSize)
			compareWithSfdisk(t, tab, loadDump(t, g.name))
			last := uint64(d.size)/uint64(g.sectorSize) - 1
			if tab.EntryCount != 128 || tab.EntrySize != 128 || tab.BackupLBA != last || tab.EntriesLBA != g.entriesLBA {
				t.Errorf("layout: %d x %d entries at LBA %d, backup at %d; want 128 x 128 at %d, backup at %d",
					tab.EntryCount, tab.EntrySize, tab.EntriesLBA, tab.BackupLBA, g.entriesLBA, last)
			}
			if tab.RecoveredFromBackup || tab.PrimaryInvalid != "" || tab.BackupInvalid != "" || tab.ProtectiveMBRInvalid != "" {
				t.Errorf("problems reported on a clean image: %+v", tab)
			}
			if tab.Grown(d.size) {
				t.Error("Grown on a disk of the table's own size")
			}
			if err := tab.Validate(d.size); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestReadKeepsSlotsNamesAndAttributes(t *testing.T) {
	tab := mustRead(t, loadImage(t, "layout-512"), 512)
	var idx []int
	for _, e := range tab.Entries {
		idx = append(idx, e.Index)
	}
	if !slices.Equal(idx, []int{1, 2, 3, 5}) {
		t.Errorf("slots %v, want [1 2 3 5] (gap at 4 kept, sorted by index)", idx)
	}
	e2, e3 := tab.Entries[1], tab.Entries[2]
	if e2.Name != "Wurzel-Dateisystem-äöü-ΩΨΦ-日本語テスト!!!" || e2.Attributes != 0x9800000000000000 {
		t.Errorf("entry 2: name %q attrs %#x", e2.Name, e2.Attributes)
	}
	if e3.Name != "emoji-😀-x" || e3.Attributes != 0x0081000000000004 {
		t.Errorf("entry 3: name %q attrs %#x", e3.Name, e3.Attributes)
	}
}

// Crafted damage: each case edits a clean image; every one must be refused
// as ErrCorrupt with a message naming where the problem is.
func TestReadRefusesUnsafeTables(t *testing.T) {
	const ss = 512
	bothHeaders := func(edit func(h []byte)) func(d *memDisk) {
		return func(d *memDisk) {
			patchHeader(d, ss, 1, edit)
			patchHeader(d, ss, uint64(d.size)/ss-1, edit)
		}
	}
	cases := []struct {
		name string
		edit func(d *memDisk)
		want []string
	}{
		{"both headers damaged", func(d *memDisk) {
			d.WriteAt([]byte{0xFF}, 512+60)
			d.WriteAt([]byte{0xFF}, d.size-512+60)
		}, []string{"LBA 1", "header CRC mismatch", "LBA 32767"}},
		{"first usable after last usable", bothHeaders(func(h []byte) { putU64(h, 40, 40000) }),
			[]string{"first usable LBA 40000 is after last usable LBA"}},
		{"entry array overlaps usable area", bothHeaders(func(h []byte) { putU64(h, 40, 20) }),
			[]string{"LBA 1", "overlaps the headers or the usable area starting at LBA 20"}},
		{"last usable beyond disk", bothHeaders(func(h []byte) { putU64(h, 48, 40000) }),
			[]string{"last usable LBA 40000 is beyond the disk's last LBA 32767"}},
		{"entry size 256", bothHeaders(func(h []byte) { putU32(h, 80, 64); putU32(h, 84, 256) }),
			[]string{"entry size 256 is not supported"}},
		{"entry count zero", bothHeaders(func(h []byte) { putU32(h, 80, 0) }),
			[]string{"entry count is 0"}},
		{"entry count not whole sectors", bothHeaders(func(h []byte) { putU32(h, 80, 130) }),
			[]string{"does not fill whole 512-byte sectors"}},
		{"entry past last usable", func(d *memDisk) {
			patchEntries(d, ss, func(a []byte) { putU64(a[2*128:], 40, 32735) }) // slot 3's last LBA
		}, []string{"entry 3: last LBA 32735 is past the last usable LBA 32734"}},
		{"entry before first usable", func(d *memDisk) {
			patchEntries(d, ss, func(a []byte) { putU64(a[0:], 32, 33) })
		}, []string{"entry 1: first LBA 33 is before the first usable LBA 2048"}},
		{"entry ends before it starts", func(d *memDisk) {
			patchEntries(d, ss, func(a []byte) { putU64(a[0:], 40, 2047) })
		}, []string{"entry 1: first LBA 2048 is after last LBA 2047"}},
		{"entries overlap", func(d *memDisk) {
			patchEntries(d, ss, func(a []byte) { putU64(a[0:], 40, 6144) }) // slot 1 runs into slot 5
		}, []string{"overlaps entry", "entry 5", "entry 1"}},
		{"primary header not at its own LBA", bothHeaders(func(h []byte) { putU64(h, 24, 7) }),
			[]string{"header found at LBA 1 says it is at LBA 7"}},
		{"backup pointer inside usable area", func(d *memDisk) {
			patchHeader(d, ss, 1, func(h []byte) { putU64(h, 32, 30000) })
			d.WriteAt(make([]byte, 512), d.size-512)
		}, []string{"backup header LBA 30000 leaves no room"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := loadImage(t, "layout-512")
			c.edit(d)
			_, err := Read(d, d.size, ss)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Read: %v, want ErrCorrupt", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestReadDiskSmallerThanTable(t *testing.T) {
	d := loadImage(t, "layout-512")
	_, err := Read(d, d.size-mib, 512)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "smaller than the GPT claims") {
		t.Fatalf("Read of a truncated disk: %v, want ErrCorrupt naming the size problem", err)
	}
}

func TestReadRecoversFromBackup(t *testing.T) {
	for _, damage := range []struct {
		name string
		off  int64
		want string
	}{
		{"header", 512 + 60, "header CRC mismatch"},
		{"entry array", 1024 + 200, "entry array at LBA 2: CRC mismatch"},
		{"signature", 512, "no GPT signature"},
	} {
		t.Run(damage.name, func(t *testing.T) {
			orig := loadImage(t, "layout-512")
			d := orig.clone(orig.size)
			d.WriteAt([]byte{0x42}, damage.off)
			tab := mustRead(t, d, 512)
			if !tab.RecoveredFromBackup || !strings.Contains(tab.PrimaryInvalid, damage.want) {
				t.Fatalf("RecoveredFromBackup %v, PrimaryInvalid %q; want true and %q", tab.RecoveredFromBackup, tab.PrimaryInvalid, damage.want)
			}
			compareWithSfdisk(t, tab, loadDump(t, "layout-512"))
			// Writing the table back restores the original bytes exactly.
			apply(t, d, mustEncode(t, tab, d.size))
			if off := d.firstDifference(orig); off >= 0 {
				t.Errorf("repaired image differs from the original at byte %d", off)
			}
		})
	}
}

func TestReadWrongSectorSizeIsNotBlank(t *testing.T) {
	d := loadImage(t, "layout-4096")
	_, err := Read(d, d.size, 512)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "written for 4096-byte sectors") {
		t.Fatalf("4K image read with 512-byte sectors: %v; want ErrCorrupt naming 4096 (never ErrNoLabel, which would invite --empty=allow to overwrite it)", err)
	}
	d = loadImage(t, "layout-512")
	_, err = Read(d, d.size, 4096)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "written for 512-byte sectors") {
		t.Fatalf("512 image read with 4096-byte sectors: %v", err)
	}
}

func TestReadHybridAndMissingProtectiveMBR(t *testing.T) {
	d := loadImage(t, "layout-512")
	d.WriteAt([]byte{0x80, 0, 0, 0, 0x0C, 0, 0, 0, 0, 8, 0, 0, 0, 0x10, 0, 0}, 446+16) // a FAT32 record next to 0xEE
	tab := mustRead(t, d, 512)
	if tab.ProtectiveMBRInvalid != "" || !tab.HybridMBR {
		t.Errorf("hybrid MBR: ProtectiveMBRInvalid %q, HybridMBR %v; want it taken as deliberate", tab.ProtectiveMBRInvalid, tab.HybridMBR)
	}
	for _, w := range mustEncode(t, tab, d.size) {
		if w.Offset < 512 {
			t.Errorf("Encode writes %s over a hybrid MBR; libfdisk keeps it", w.What)
		}
	}

	d = loadImage(t, "layout-512")
	d.WriteAt(make([]byte, 512), 0)
	tab = mustRead(t, d, 512)
	if !strings.Contains(tab.ProtectiveMBRInvalid, "no MBR boot signature") {
		t.Errorf("zeroed LBA 0: ProtectiveMBRInvalid %q", tab.ProtectiveMBRInvalid)
	}
	orig := loadImage(t, "layout-512")
	apply(t, d, mustEncode(t, tab, d.size))
	if got, want := d.bytesAt(446, 66), orig.bytesAt(446, 66); string(got) != string(want) {
		t.Errorf("rewritten protective MBR % x, sfdisk wrote % x", got, want)
	}
}

// io.ReaderAt may return io.EOF together with a full read at the end of
// the device; that is not an error.
func TestReadAcceptsEOFWithFullRead(t *testing.T) {
	d := loadImage(t, "layout-512")
	tab, err := Read(eofAtEnd{d}, d.size, 512)
	if err != nil {
		t.Fatal(err)
	}
	compareWithSfdisk(t, tab, loadDump(t, "layout-512"))
}

type eofAtEnd struct{ d *memDisk }

func (r eofAtEnd) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.d.ReadAt(p, off)
	if err == nil && off+int64(n) == r.d.size {
		err = io.EOF
	}
	return n, err
}
