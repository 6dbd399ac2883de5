package gpt

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/tests/harness"
)

const mib = 1 << 20

// memDisk is a sparse in-memory disk: chunks never written read as zeros,
// so a 3 TiB disk costs only the chunks the test touches.
type memDisk struct {
	size   int64
	chunks map[int64][]byte
}

const chunkSize = 64 << 10

func newMemDisk(size int64) *memDisk { return &memDisk{size: size, chunks: map[int64][]byte{}} }

func (d *memDisk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= d.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off+int64(n) < d.size {
		pos := off + int64(n)
		c, in := pos/chunkSize, pos%chunkSize
		m := min(int64(len(p)-n), chunkSize-in, d.size-pos)
		if chunk, ok := d.chunks[c]; ok {
			copy(p[n:n+int(m)], chunk[in:in+m])
		} else {
			clear(p[n : n+int(m)])
		}
		n += int(m)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (d *memDisk) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > d.size {
		return 0, fmt.Errorf("write of %d bytes at %d beyond disk of %d bytes", len(p), off, d.size)
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		c, in := pos/chunkSize, pos%chunkSize
		m := min(int64(len(p)-n), chunkSize-in)
		chunk, ok := d.chunks[c]
		if !ok {
			chunk = make([]byte, chunkSize)
			d.chunks[c] = chunk
		}
		copy(chunk[in:in+m], p[n:n+int(m)])
		n += int(m)
	}
	return n, nil
}

// clone returns an independent copy, optionally resized (growing a disk
// keeps its data; the new space reads as zeros).
func (d *memDisk) clone(size int64) *memDisk {
	c := newMemDisk(size)
	for k, v := range d.chunks {
		if k*chunkSize < size {
			c.chunks[k] = bytes.Clone(v)
		}
	}
	return c
}

func (d *memDisk) bytesAt(off int64, n int) []byte {
	b := make([]byte, n)
	if _, err := d.ReadAt(b, off); err != nil {
		panic(err)
	}
	return b
}

// firstDifference returns the offset of the first byte where d and o
// differ, or -1.
func (d *memDisk) firstDifference(o *memDisk) int64 {
	if d.size != o.size {
		return 0
	}
	keys := map[int64]bool{}
	for k := range d.chunks {
		keys[k] = true
	}
	for k := range o.chunks {
		keys[k] = true
	}
	sorted := make([]int64, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	slices.Sort(sorted)
	for _, k := range sorted {
		n := int(min(chunkSize, d.size-k*chunkSize))
		a, b := d.bytesAt(k*chunkSize, n), o.bytesAt(k*chunkSize, n)
		for i := range a {
			if a[i] != b[i] {
				return k*chunkSize + int64(i)
			}
		}
	}
	return -1
}

func apply(t *testing.T, d interface {
	WriteAt([]byte, int64) (int, error)
}, writes []Write) {
	t.Helper()
	for _, w := range writes {
		if _, err := d.WriteAt(w.Data, w.Offset); err != nil {
			t.Fatalf("applying %s: %v", w.What, err)
		}
	}
}

// golden holds the reference images and their sfdisk dumps
// (testdata/make.sh makes them).
//
//go:embed testdata/*.img.gz testdata/*.json
var golden embed.FS

// goldenImage returns the image testdata/NAME.img.gz, uncompressed.
func goldenImage(t *testing.T, name string) []byte {
	t.Helper()
	f, err := golden.Open("testdata/" + name + ".img.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// loadImage is the reference image NAME in memory.
func loadImage(t *testing.T, name string) *memDisk {
	t.Helper()
	raw := goldenImage(t, name)
	d := newMemDisk(int64(len(raw)))
	if _, err := d.WriteAt(raw, 0); err != nil {
		t.Fatal(err)
	}
	return d
}

func mustRead(t *testing.T, d *memDisk, sectorSize int) *Table {
	t.Helper()
	tab, err := Read(d, d.size, sectorSize)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	diskfsAgrees(t, d, d.size, tab)
	return tab
}

func mustEncode(t *testing.T, tab *Table, size int64) []Write {
	t.Helper()
	w, err := tab.Encode(size)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return w
}

// parseSfdiskJSON decodes `sfdisk --json` output (tests/harness's parser).
func parseSfdiskJSON(t *testing.T, raw []byte) *harness.Table {
	t.Helper()
	d, err := harness.ParseTable(raw)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// sfdiskAttrs converts sfdisk's attribute string ("RequiredPartition
// LegacyBIOSBootable GUID:48,55") to the 64-bit field.
func sfdiskAttrs(t *testing.T, s string) uint64 {
	t.Helper()
	var a uint64
	for _, f := range strings.Fields(s) {
		switch {
		case f == "RequiredPartition":
			a |= 1 << 0
		case f == "NoBlockIOProtocol":
			a |= 1 << 1
		case f == "LegacyBIOSBootable":
			a |= 1 << 2
		case strings.HasPrefix(f, "GUID:"):
			for _, n := range strings.Split(strings.TrimPrefix(f, "GUID:"), ",") {
				bit, err := strconv.Atoi(n)
				if err != nil {
					t.Fatalf("attrs %q: %v", s, err)
				}
				a |= 1 << bit
			}
		default:
			t.Fatalf("unknown sfdisk attribute %q", f)
		}
	}
	return a
}

// compareWithSfdisk checks that tab says what sfdisk says about the disk.
func compareWithSfdisk(t *testing.T, tab *Table, pt *harness.Table) {
	t.Helper()
	if pt.Label != "gpt" || !strings.EqualFold(pt.ID, tab.DiskGUID.String()) ||
		pt.FirstLBA != tab.FirstUsableLBA || pt.LastLBA != tab.LastUsableLBA || pt.SectorSize != uint64(tab.SectorSize) {
		t.Errorf("header: sfdisk says %s %s first %d last %d sector %d; Read says guid %s first %d last %d sector %d",
			pt.Label, pt.ID, pt.FirstLBA, pt.LastLBA, pt.SectorSize,
			tab.DiskGUID, tab.FirstUsableLBA, tab.LastUsableLBA, tab.SectorSize)
	}
	if len(pt.Partitions) != len(tab.Entries) {
		t.Fatalf("sfdisk lists %d partitions, Read %d", len(pt.Partitions), len(tab.Entries))
	}
	for _, p := range pt.Partitions {
		idx := p.Entry
		want := Entry{
			Index:      idx,
			Type:       uuid.MustParse(p.Type),
			UUID:       uuid.MustParse(p.UUID),
			FirstLBA:   p.Start,
			LastLBA:    p.Start + p.Size - 1,
			Attributes: sfdiskAttrs(t, p.Attrs),
			Name:       p.Name,
		}
		i := slices.IndexFunc(tab.Entries, func(e Entry) bool { return e.Index == idx })
		if i < 0 {
			t.Errorf("slot %d missing from Read's entries", idx)
			continue
		}
		if tab.Entries[i] != want {
			t.Errorf("slot %d: Read %+v, sfdisk %+v", idx, tab.Entries[i], want)
		}
	}
}

// loadDump reads testdata/NAME.json.
func loadDump(t *testing.T, name string) *harness.Table {
	t.Helper()
	raw, err := golden.ReadFile("testdata/" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	return parseSfdiskJSON(t, raw)
}

// patchHeader rewrites the header sector at lba through edit and fixes its
// CRC, the way a crafted (or buggy-tool) table would look. It does not use
// the package's own encoder.
func patchHeader(d *memDisk, ss int, lba uint64, edit func(h []byte)) {
	h := d.bytesAt(int64(lba)*int64(ss), ss)
	edit(h)
	fixHeaderCRC(h)
	if _, err := d.WriteAt(h, int64(lba)*int64(ss)); err != nil {
		panic(err)
	}
}

func fixHeaderCRC(h []byte) {
	binary.LittleEndian.PutUint32(h[16:20], 0)
	binary.LittleEndian.PutUint32(h[16:20], crc32.ChecksumIEEE(h[:92]))
}

// patchEntries edits both copies of the entry array and fixes both
// headers' array CRC and header CRC.
func patchEntries(d *memDisk, ss int, edit func(array []byte)) {
	for _, lba := range []uint64{1, uint64(d.size)/uint64(ss) - 1} {
		h := d.bytesAt(int64(lba)*int64(ss), ss)
		at := int64(binary.LittleEndian.Uint64(h[72:80])) * int64(ss)
		n := int(binary.LittleEndian.Uint32(h[80:84]) * binary.LittleEndian.Uint32(h[84:88]))
		array := d.bytesAt(at, n)
		edit(array)
		if _, err := d.WriteAt(array, at); err != nil {
			panic(err)
		}
		patchHeader(d, ss, lba, func(h []byte) {
			binary.LittleEndian.PutUint32(h[88:92], crc32.ChecksumIEEE(array))
		})
	}
}

func putU64(b []byte, off int, v uint64) { binary.LittleEndian.PutUint64(b[off:off+8], v) }
func putU32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:off+4], v) }
