package gpt

// Benchmarks for the GPT reader and writer, run by `make bench`
// (docs/benchmarks.md).
// The table is the seed layout after its first boot (ESP, store, home,
// var) on disks from 1 GiB to 64 TiB: reading and encoding must cost the
// same on every size. BenchmarkRead also reports how many reads it issues
// and how many bytes it reads: a no-op run should read only LBA 0, the two
// headers and the two entry arrays.

import (
	"io"
	"testing"

	diskfs "github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/google/uuid"
)

var benchDiskSizes = []struct {
	name  string
	bytes int64
}{
	{"1GiB", 1 << 30}, {"10GiB", 10 << 30}, {"1TiB", 1 << 40}, {"16TiB", 16 << 40}, {"64TiB", 64 << 40},
}

// seedTable is the seed layout on a disk of size bytes: ESP and store as
// the factory image has them, the rest split 2:1 between home and var.
func seedTable(b *testing.B, size int64) *Table {
	b.Helper()
	t := New(size, 512, uuid.MustParse("6913f4b6-6690-4a57-a202-f1b53c56dbdf"))
	typ := func(s string) uuid.UUID { return uuid.MustParse(s) }
	t.Entries = []Entry{
		{Index: 1, Type: typ("c12a7328-f81f-11d2-ba4b-00a0c93ec93b"), UUID: uuid.New(), FirstLBA: 2048, LastLBA: 2048 + 409600 - 1, Name: "boot"},
		{Index: 2, Type: typ("0fc63daf-8483-4772-8e79-3d69d8477de4"), UUID: uuid.New(), FirstLBA: 411648, LastLBA: 411648 + 703056 - 1, Name: "nix-store"},
	}
	free := (t.LastUsableLBA + 1 - 1114704) / 4096 * 4096
	home := free / 3 * 2 / 4096 * 4096
	t.Entries = append(t.Entries,
		Entry{Index: 3, Type: typ("933ac7e1-2eb4-4f13-b844-0e14e2aef915"), UUID: uuid.New(), FirstLBA: 1114704, LastLBA: 1114704 + home - 1, Name: "home", Attributes: 1 << 59},
		Entry{Index: 4, Type: typ("4d21b016-b534-45c2-a9fb-5c16e091fd2d"), UUID: uuid.New(), FirstLBA: 1114704 + home, LastLBA: 1114704 + free - 1, Name: "var", Attributes: 1 << 59},
	)
	if err := t.Validate(size); err != nil {
		b.Fatal(err)
	}
	return t
}

// countingReader counts the reads and bytes that go to the disk.
type countingReader struct {
	r            io.ReaderAt
	reads, bytes int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.reads++
	n, err := c.r.ReadAt(p, off)
	c.bytes += int64(n)
	return n, err
}

func BenchmarkRead(b *testing.B) {
	for _, ds := range benchDiskSizes {
		b.Run("size="+ds.name, func(b *testing.B) {
			d := newMemDisk(ds.bytes)
			writes, err := seedTable(b, ds.bytes).Encode(ds.bytes)
			if err != nil {
				b.Fatal(err)
			}
			for _, w := range writes {
				if _, err := d.WriteAt(w.Data, w.Offset); err != nil {
					b.Fatal(err)
				}
			}
			c := &countingReader{r: d}
			if tab, err := Read(c, ds.bytes, 512); err != nil || len(tab.Entries) != 4 || tab.BackupInvalid != "" {
				b.Fatalf("Read: %v (%+v)", err, tab)
			}
			reads, bytes := c.reads, c.bytes
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Read(c, ds.bytes, 512); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(reads), "reads/op")
			b.ReportMetric(float64(bytes), "bytes-read/op")
		})
	}
}

// BenchmarkReadGoDiskfs is what reading with go-diskfs's gpt.Read would
// cost instead: the primary copy only (no backup check, no layout
// checks), decoded into its Table (docs/gpt.md, "Reading").
func BenchmarkReadGoDiskfs(b *testing.B) {
	for _, ds := range benchDiskSizes {
		b.Run("size="+ds.name, func(b *testing.B) {
			d := newMemDisk(ds.bytes)
			writes, err := seedTable(b, ds.bytes).Encode(ds.bytes)
			if err != nil {
				b.Fatal(err)
			}
			for _, w := range writes {
				if _, err := d.WriteAt(w.Data, w.Offset); err != nil {
					b.Fatal(err)
				}
			}
			c := &countingReader{r: d}
			f := &diskfsView{r: c, size: ds.bytes, sectorSize: 512}
			if gt, err := diskfs.Read(f, 512, 512); err != nil || len(gt.Partitions) != 4 {
				b.Fatalf("go-diskfs Read: %v", err)
			}
			reads, bytes := c.reads, c.bytes
			b.ReportAllocs()
			for b.Loop() {
				if _, err := diskfs.Read(f, 512, 512); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(reads), "reads/op")
			b.ReportMetric(float64(bytes), "bytes-read/op")
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, ds := range benchDiskSizes {
		b.Run("size="+ds.name, func(b *testing.B) {
			t := seedTable(b, ds.bytes)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := t.Encode(ds.bytes); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
