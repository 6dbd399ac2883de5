package gpt

import (
	"testing"

	"github.com/google/uuid"
)

// An unchanged table read from a tool-made image encodes to exactly the
// bytes the tool wrote: headers, both arrays and the protective MBR.
func TestEncodeUnchangedTableIsByteIdentical(t *testing.T) {
	for _, g := range goldenImages {
		t.Run(g.name, func(t *testing.T) {
			orig := loadImage(t, g.name)
			tab := mustRead(t, orig, g.sectorSize)
			d := orig.clone(orig.size)
			d.WriteAt(make([]byte, 66), 446) // so the PMBR must really be written, not just left alone
			apply(t, d, mustEncode(t, tab, d.size))
			if off := orig.firstDifference(d); off >= 0 {
				t.Fatalf("re-encoded image differs from %s at byte %d (LBA %d)", g.name, off, off/int64(g.sectorSize))
			}
		})
	}
}

func TestEncodeWriteOrder(t *testing.T) {
	for _, g := range goldenImages {
		t.Run(g.name, func(t *testing.T) {
			d := loadImage(t, g.name)
			tab := mustRead(t, d, g.sectorSize)
			ss := int64(g.sectorSize)
			last := d.size/ss - 1
			array := 16384 / ss
			want := []Write{
				{What: "backup GPT entry array", Offset: (last - array) * ss},
				{What: "backup GPT header", Offset: last * ss},
				{What: "primary GPT entry array", Offset: int64(g.entriesLBA) * ss},
				{What: "primary GPT header", Offset: ss},
				{What: "protective MBR", Offset: 446},
			}
			got := mustEncode(t, tab, d.size)
			if len(got) != len(want) {
				t.Fatalf("%d writes, want %d", len(got), len(want))
			}
			sizes := []int{16384, int(ss), 16384, int(ss), 66}
			for i := range want {
				if got[i].What != want[i].What || got[i].Offset != want[i].Offset || len(got[i].Data) != sizes[i] {
					t.Errorf("write %d: %s at %d (%d bytes), want %s at %d (%d bytes)",
						i, got[i].What, got[i].Offset, len(got[i].Data), want[i].What, want[i].Offset, sizes[i])
				}
			}
		})
	}
}

// New lays out a table like libfdisk does. The numbers are what
// `sfdisk --json` reported for `label: gpt` on files and on loop devices
// with 4096-byte sectors (TestNewMatchesSystemdRepartLive checks them
// against the installed tools).
func TestNewLayout(t *testing.T) {
	cases := []struct {
		size              int64
		ss                int
		first, last, back uint64
	}{
		{4 * mib, 512, 34, 8158, 8191},               // <= 4 MiB: no 1 MiB alignment
		{4*mib + 512, 512, 2048, 8159, 8192},         // first size above it
		{64 * mib, 512, 2048, 131038, 131071},        // systemd-repart --size=64M
		{1 << 30, 512, 2048, 2097118, 2097151},       // 1 GiB
		{3 << 40, 512, 2048, 6442450910, 6442450943}, // 3 TiB
		{4 * mib, 4096, 6, 1018, 1023},
		{4*mib + 4096, 4096, 256, 1019, 1024},
		{64 * mib, 4096, 256, 16378, 16383},
	}
	for _, c := range cases {
		tab := New(c.size, c.ss, uuid.Nil)
		if tab.FirstUsableLBA != c.first || tab.LastUsableLBA != c.last || tab.BackupLBA != c.back ||
			tab.EntryCount != 128 || tab.EntrySize != 128 || tab.EntriesLBA != 2 || tab.SectorSize != c.ss {
			t.Errorf("New(%d, %d) = first %d last %d backup %d; want %d %d %d",
				c.size, c.ss, tab.FirstUsableLBA, tab.LastUsableLBA, tab.BackupLBA, c.first, c.last, c.back)
		}
		if err := tab.Validate(c.size); err != nil {
			t.Errorf("New(%d, %d): %v", c.size, c.ss, err)
		}
	}
}

func TestCloneIsDeep(t *testing.T) {
	tab := mustRead(t, loadImage(t, "layout-512"), 512)
	c := tab.Clone()
	c.Entries[0].Name = "changed"
	c.Relocate(1 << 30)
	if tab.Entries[0].Name == "changed" || tab.BackupLBA == c.BackupLBA {
		t.Error("Clone shares state with the original")
	}
}
