package gpt

import (
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"

	diskfs "github.com/diskfs/go-diskfs/partition/gpt"
)

// TestUpstreamDefectsStillPresent pins the go-diskfs v1.9.4 behaviour that
// the guards in this package exist for, by driving go-diskfs directly. If a
// subtest fails after a go-diskfs upgrade, upstream changed: re-check the
// guard (and docs/gpt.md) before relaxing it. (The out-of-memory crash on a
// huge entry count is not reproduced here: it kills the test binary.)
func TestUpstreamDefectsStillPresent(t *testing.T) {
	t.Run("Write ignores the disk size", func(t *testing.T) {
		d := loadImage(t, "layout-512").clone(64 * mib)
		gt := diskfsRead(t, d, 512)
		if err := gt.Write(&memFile{d: d}, d.size); err != nil {
			t.Fatal(err)
		}
		if got := d.bytesAt(d.size-512, 8); string(got) == "EFI PART" {
			t.Error("go-diskfs now writes the backup at the end of the disk")
		}
	})
	t.Run("protective MBR unseen on 4K sectors", func(t *testing.T) {
		if diskfsRead(t, loadImage(t, "layout-4096"), 4096).ProtectiveMBR {
			t.Error("go-diskfs now recognises the 4K protective MBR")
		}
	})
	t.Run("protective MBR size truncated and CHS zeroed", func(t *testing.T) {
		d := loadImage(t, "layout-512").clone(3 << 40)
		gt := diskfsRead(t, d, 512)
		gt.Resize(uint64(d.size))
		if err := gt.Write(&memFile{d: d}, d.size); err != nil {
			t.Fatal(err)
		}
		rec := d.bytesAt(446, 16)
		if n := binary.LittleEndian.Uint32(rec[12:16]); n != 0x7FFFFFFF {
			t.Errorf("size field %#x; go-diskfs no longer truncates", n)
		}
		if rec[2] != 0 || rec[5] != 0 {
			t.Errorf("CHS bytes % x; go-diskfs no longer zeroes them", rec[1:8])
		}
	})
	t.Run("no overlap check", func(t *testing.T) {
		d := loadImage(t, "layout-512")
		gt := diskfsRead(t, d, 512)
		gt.Partitions = append(gt.Partitions, &diskfs.Partition{Index: 10, Start: 2048, End: 4095, Type: diskfs.LinuxFilesystem})
		if err := gt.Write(&memFile{d: d}, d.size); err != nil {
			t.Errorf("go-diskfs now refuses overlapping partitions: %v", err)
		}
	})
	t.Run("name length panics", func(t *testing.T) {
		d := loadImage(t, "layout-512")
		gt := diskfsRead(t, d, 512)
		gt.Partitions[0].Name = strings.Repeat("a", 35) + "😀"
		panicked := func() (p bool) {
			defer func() { p = recover() != nil }()
			_ = gt.Write(&memFile{d: d}, d.size)
			return false
		}()
		if !panicked {
			t.Error("go-diskfs no longer panics on a 36-rune, 37-unit name")
		}
	})
	t.Run("backup damage unnoticed", func(t *testing.T) {
		d := loadImage(t, "layout-512")
		d.WriteAt([]byte{0x42}, d.size-512+60)
		if _, err := diskfs.Read(&memFile{d: d}, 512, 512); err != nil {
			t.Errorf("go-diskfs now reports backup damage on Read: %v", err)
		}
	})
	t.Run("Write mutates partitions", func(t *testing.T) {
		d := loadImage(t, "layout-512")
		gt := diskfsRead(t, d, 512)
		p := &diskfs.Partition{Index: 4, Start: 24576, End: 26623, Type: diskfs.LinuxFilesystem}
		gt.Partitions = append(gt.Partitions, p)
		if err := gt.Write(&memFile{d: d}, d.size); err != nil {
			t.Fatal(err)
		}
		if p.GUID == "" && p.Size == 0 {
			t.Error("go-diskfs no longer fills in GUID and Size of the caller's partitions")
		}
	})
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
