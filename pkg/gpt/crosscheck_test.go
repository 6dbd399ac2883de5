package gpt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"

	diskfs "github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/google/uuid"
)

// diskfsAgrees decodes the copy Read chose with go-diskfs's gpt.Read and
// fails the test unless it finds the same disk GUID, usable range and
// entries. Read decodes GPTs itself (it runs on every boot); this keeps
// go-diskfs as the second opinion on everything the tests read.
func diskfsAgrees(t *testing.T, r io.ReaderAt, size int64, tab *Table) {
	t.Helper()
	ss := tab.SectorSize
	view := &diskfsView{r: r, size: size, sectorSize: ss, hidePrimary: tab.RecoveredFromBackup}
	gt, err := diskfs.Read(view, ss, ss)
	if err != nil {
		t.Fatalf("go-diskfs rejects the GPT that Read accepted: %v\n%+v", err, tab)
	}
	if err := compareWithDiskfs(gt, tab); err != nil {
		t.Fatalf("go-diskfs decodes the GPT differently: %v", err)
	}
}

func compareWithDiskfs(gt *diskfs.Table, tab *Table) error {
	if gt.RecoveredFromBackup != tab.RecoveredFromBackup {
		return fmt.Errorf("go-diskfs read the other copy (from backup: %v)", gt.RecoveredFromBackup)
	}
	if gt.LastDataSector() != tab.LastUsableLBA || !strings.EqualFold(gt.GUID, tab.DiskGUID.String()) {
		return fmt.Errorf("last usable LBA %d, disk GUID %s; Read: %d, %s", gt.LastDataSector(), gt.GUID, tab.LastUsableLBA, tab.DiskGUID)
	}
	var got []Entry
	for _, p := range gt.Partitions {
		typ, err1 := uuid.Parse(string(p.Type))
		id, err2 := uuid.Parse(p.GUID)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("entry %d: %w", p.Index, err)
		}
		got = append(got, Entry{Index: p.Index, Type: typ, UUID: id, FirstLBA: p.Start, LastLBA: p.End, Attributes: p.Attributes, Name: p.Name})
	}
	slices.SortFunc(got, func(a, b Entry) int { return a.Index - b.Index })
	if !slices.Equal(got, tab.Entries) {
		return fmt.Errorf("entries\ngo-diskfs %+v\nRead      %+v", got, tab.Entries)
	}
	return nil
}

// diskfsView presents an io.ReaderAt as the backend.File go-diskfs reads
// from. With hidePrimary set, LBA 1 reads as zeros, which makes go-diskfs
// take the backup copy (at the last LBA, where Read finds it when the
// primary is damaged).
type diskfsView struct {
	r           io.ReaderAt
	size        int64
	sectorSize  int
	hidePrimary bool
	pos         int64
}

func (v *diskfsView) ReadAt(p []byte, off int64) (int, error) {
	n, err := v.r.ReadAt(p, off)
	if n == len(p) {
		err = nil // io.ReaderAt may report io.EOF with a full read; go-diskfs treats any error as failure
	}
	if v.hidePrimary {
		lo, hi := max(off, int64(v.sectorSize)), min(off+int64(n), 2*int64(v.sectorSize))
		if lo < hi {
			clear(p[lo-off : hi-off])
		}
	}
	return n, err
}

func (v *diskfsView) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		v.pos = offset
	case io.SeekCurrent:
		v.pos += offset
	case io.SeekEnd:
		v.pos = v.size + offset
	default:
		return 0, fmt.Errorf("seek: invalid whence %d", whence)
	}
	return v.pos, nil
}

func (v *diskfsView) Read(p []byte) (int, error) {
	n, err := v.ReadAt(p, v.pos)
	v.pos += int64(n)
	return n, err
}

func (v *diskfsView) Stat() (fs.FileInfo, error) { return nil, errors.ErrUnsupported }
func (v *diskfsView) Close() error               { return nil }

// TestDecodeNameMatchesUTF16Decode compares decodeName with the standard
// library's decoder on names full of surrogates, pairs and zeros.
func TestDecodeNameMatchesUTF16Decode(t *testing.T) {
	units := []uint16{'a', 0xe9, 0x4e2d, 0xd83d, 0xde00, 0xd800, 0xdc00, 0xdfff, 0xd800, 'z', 0xfffd, 0}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		field := make([]byte, 2*nameUnits)
		for i := range nameUnits {
			binary.LittleEndian.PutUint16(field[2*i:], units[rng.IntN(len(units))])
		}
		var want []uint16
		for i := 0; i < nameUnits; i++ {
			u := binary.LittleEndian.Uint16(field[2*i:])
			if u == 0 {
				break
			}
			want = append(want, u)
		}
		if got, w := decodeName(field), string(utf16.Decode(want)); got != w {
			t.Fatalf("units %x: decodeName %q, utf16.Decode %q", want, got, w)
		}
	}
}
