package gpt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	diskfs "github.com/diskfs/go-diskfs/partition/gpt"
)

// Write is one contiguous region of the disk to write.
type Write struct {
	What   string // e.g. "backup GPT header", for logs and errors
	Offset int64  // in bytes from the start of the disk
	Data   []byte
}

// Encode returns the writes that store t on a disk of size bytes, in the
// order that keeps a valid table on disk across a crash: backup entry
// array, backup header, primary entry array, primary header, protective
// MBR. The caller syncs after each write: until the new backup is
// durable the old primary still matches the old backup; after it, a torn
// primary makes readers use the new backup.
//
// go-diskfs's Table.Write encodes everything, into memory: both headers,
// both entry arrays and the protective MBR. sprout encodes nothing
// itself; it corrects what go-diskfs gets wrong, one named guard per
// defect (docs/gpt.md), and then decodes every byte go-diskfs produced and
// compares it with t, so a table go-diskfs encoded differently is an
// error, never a write. Only bytes 446..511 of LBA 0 are written, so boot
// code and the MBR disk signature are kept. Nothing else on the disk is
// written; a stale backup header left at the old end of a grown disk
// stays, as it does with libfdisk.
//
// t must come from Read (any entry count) or New: go-diskfs takes a
// table's entry count and array layout only from a header it reads, so
// Encode loads the copy Read decoded into it, and creates a new table
// only with its default 128 entries.
func (t *Table) Encode(size int64) ([]Write, error) {
	if err := t.Validate(size); err != nil {
		return nil, err
	}
	gt, err := t.diskfsTable()
	if err != nil {
		return nil, err
	}
	ss := int64(t.SectorSize)
	gt.GUID = strings.ToUpper(t.DiskGUID.String())
	// Defect 10: Write fills in GUIDs and sizes in the structs it is
	// given, so it gets fresh ones on every call, never t's.
	gt.Partitions = t.diskfsPartitions()
	// Defect 2: go-diskfs decides from LBA 0 whether a protective MBR is
	// there and misreads it on 4K sectors; Read has classified LBA 0
	// itself, and a hybrid MBR is kept as it is.
	gt.ProtectiveMBR = !t.HybridMBR
	// Defect 1: for a table it has read, Write keeps the backup where it
	// was, whatever the disk size; Resize moves it (Relocate has, in t).
	// A table go-diskfs creates is laid out for size by Write itself
	// (Resize before that would count an entry array of 0 sectors).
	if backupEnd := (int64(t.BackupLBA) + 1) * ss; t.source != nil && int64(gt.TotalSize()) != backupEnd {
		gt.Resize(uint64(backupEnd))
	}
	rec := &recorder{size: size, regions: map[int64][]byte{}}
	if err := gt.Write(rec, size); err != nil {
		return nil, fmt.Errorf("encoding GPT with go-diskfs: %w", err)
	}

	array := int64(arraySectors(t.EntryCount, t.SectorSize))
	arrayLen := int64(t.EntryCount) * entrySize
	backupLBA := int64(t.BackupLBA)
	backupArray, err1 := rec.take((backupLBA-array)*ss, arrayLen)
	backupHeader, err2 := rec.take(backupLBA*ss, ss)
	primaryArray, err3 := rec.take(2*ss, arrayLen) // go-diskfs always puts it at LBA 2
	primaryHeader, err4 := rec.take(ss, ss)
	var pmbr []byte
	var err5 error
	if gt.ProtectiveMBR {
		pmbr, err5 = rec.take(mbrRecordsOffset, mbrTailSize)
	}
	if err := errors.Join(err1, err2, err3, err4, err5, rec.leftover()); err != nil {
		return nil, fmt.Errorf("go-diskfs wrote an unexpected layout: %w", err)
	}

	// Defect 11: go-diskfs gives a table it creates the first usable LBA
	// 2 + the array's sectors; libfdisk (so systemd-repart) puts it at
	// 1 MiB, and New does too.
	for _, h := range [][]byte{primaryHeader, backupHeader} {
		if binary.LittleEndian.Uint64(h[offFirstUsable:]) != t.FirstUsableLBA {
			setHeaderField(h, offFirstUsable, t.FirstUsableLBA)
		}
	}
	// Defect 12: go-diskfs writes the primary entry array at LBA 2, even
	// when the table it read keeps it elsewhere (sgdisk --move-main-table,
	// for a boot loader at LBA 2 and on): the array goes where t says.
	if t.EntriesLBA != 2 {
		setHeaderField(primaryHeader, offEntriesLBA, t.EntriesLBA)
	}
	if err := t.checkEncoded(primaryHeader, backupHeader, primaryArray, backupArray); err != nil {
		return nil, fmt.Errorf("go-diskfs encoded the GPT wrongly: %w", err)
	}

	writes := []Write{
		{What: "backup GPT entry array", Offset: (backupLBA - array) * ss, Data: backupArray},
		{What: "backup GPT header", Offset: backupLBA * ss, Data: backupHeader},
		{What: "primary GPT entry array", Offset: int64(t.EntriesLBA) * ss, Data: primaryArray},
		{What: "primary GPT header", Offset: ss, Data: primaryHeader},
	}
	if pmbr != nil {
		// Defects 3 and 4: go-diskfs truncates the protective record's
		// size to 32 bits on disks over 2 TiB and writes zeros for its CHS
		// fields.
		fixProtectiveRecord(pmbr, uint64(size)/uint64(ss))
		if err := checkProtectiveMBR(pmbr, uint64(size)/uint64(ss)); err != nil {
			return nil, fmt.Errorf("go-diskfs encoded the protective MBR wrongly: %w", err)
		}
		writes = append(writes, Write{What: "protective MBR", Offset: mbrRecordsOffset, Data: pmbr})
	}
	return writes, nil
}

// diskfsTable returns the go-diskfs table Encode starts from. go-diskfs
// keeps the entry count, the array position and the usable range in
// unexported fields that only its Read sets, so a table Read decoded is
// handed to it as the bytes it was decoded from; a table from New is one
// go-diskfs creates itself (128 entries; its Write lays it out for the
// disk, and defect 11's guard sets the first usable LBA).
func (t *Table) diskfsTable() (*diskfs.Table, error) {
	if t.source == nil {
		if t.EntryCount != defaultEntries {
			return nil, fmt.Errorf("encoding GPT: go-diskfs creates tables of %d entries only; a table of %d entries must come from a disk (Read)", defaultEntries, t.EntryCount)
		}
		return &diskfs.Table{LogicalSectorSize: t.SectorSize, PhysicalSectorSize: t.SectorSize}, nil
	}
	gt, err := diskfs.Read(t.source.image(t.SectorSize), t.SectorSize, t.SectorSize)
	if err != nil {
		return nil, fmt.Errorf("loading the GPT header into go-diskfs: %w", err)
	}
	return gt, nil
}

// source is one copy of a table as Read found it: the header sector and
// the entry array, each with the LBA it was read from.
type source struct {
	headerLBA uint64
	header    []byte
	arrayLBA  uint64
	array     []byte
}

// image presents the copy as a disk go-diskfs can read: the header and
// array where they were, zeros elsewhere. A backup copy sits at the
// image's last LBA behind an empty LBA 1, so go-diskfs finds it the way
// it finds any backup: by falling back to the end of the disk.
func (s *source) image(sectorSize int) *sourceImage {
	last := max(s.headerLBA, s.arrayLBA+uint64(len(s.array)/sectorSize)-1)
	return &sourceImage{src: s, ss: int64(sectorSize), size: int64(last+1) * int64(sectorSize)}
}

// sourceImage is the backend.File go-diskfs reads a source from.
type sourceImage struct {
	src  *source
	ss   int64
	size int64
}

func (m *sourceImage) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > m.size {
		return 0, fmt.Errorf("read of %d bytes at %d is outside the %d-byte image", len(p), off, m.size)
	}
	clear(p)
	for _, r := range []struct {
		lba  uint64
		data []byte
	}{{m.src.headerLBA, m.src.header}, {m.src.arrayLBA, m.src.array}} {
		start := int64(r.lba) * m.ss
		if lo, hi := max(off, start), min(off+int64(len(p)), start+int64(len(r.data))); lo < hi {
			copy(p[lo-off:hi-off], r.data[lo-start:hi-start])
		}
	}
	return len(p), nil
}

func (m *sourceImage) Seek(offset int64, whence int) (int64, error) {
	if whence == io.SeekEnd {
		return m.size + offset, nil
	}
	return 0, errors.ErrUnsupported
}

func (m *sourceImage) Read([]byte) (int, error)   { return 0, errors.ErrUnsupported }
func (m *sourceImage) Stat() (fs.FileInfo, error) { return nil, errors.ErrUnsupported }
func (m *sourceImage) Close() error               { return nil }

func (t *Table) diskfsPartitions() []*diskfs.Partition {
	parts := make([]*diskfs.Partition, 0, len(t.Entries))
	for _, e := range t.Entries {
		parts = append(parts, &diskfs.Partition{
			Index:      e.Index,
			Start:      e.FirstLBA,
			End:        e.LastLBA,
			Type:       diskfs.Type(strings.ToUpper(e.Type.String())),
			GUID:       strings.ToUpper(e.UUID.String()),
			Attributes: e.Attributes,
			Name:       e.Name,
		})
	}
	return parts
}

// wantHeader is what the primary or backup header storing t says.
func (t *Table) wantHeader(primary bool, entriesCRC uint32) header {
	h := header{
		myLBA:        1,
		alternateLBA: t.BackupLBA,
		firstUsable:  t.FirstUsableLBA,
		lastUsable:   t.LastUsableLBA,
		diskGUID:     t.DiskGUID,
		entriesLBA:   t.EntriesLBA,
		entryCount:   t.EntryCount,
		entrySize:    entrySize,
		entriesCRC:   entriesCRC,
	}
	if !primary {
		h.myLBA, h.alternateLBA = t.BackupLBA, 1
		h.entriesLBA = t.BackupLBA - arraySectors(t.EntryCount, t.SectorSize)
	}
	return h
}

// checkEncoded decodes what go-diskfs wrote (after the guards) and
// compares it with t: both headers must be valid and say what t says,
// the two arrays must be identical, and every slot must decode back to
// exactly t's entry, or be zero if t does not use it.
func (t *Table) checkEncoded(primaryHeader, backupHeader, primaryArray, backupArray []byte) error {
	if !bytes.Equal(primaryArray, backupArray) {
		return errors.New("primary and backup entry arrays differ")
	}
	crc := crc32IEEE(primaryArray)
	for _, c := range []struct {
		what    string
		sector  []byte
		primary bool
	}{{"primary header", primaryHeader, true}, {"backup header", backupHeader, false}} {
		got, err := parseHeader(c.sector)
		if err != nil {
			return fmt.Errorf("%s: %w", c.what, err)
		}
		if want := t.wantHeader(c.primary, crc); got != want {
			return fmt.Errorf("%s says %+v, the table %+v", c.what, got, want)
		}
		if !isZero(c.sector[headerSize:]) {
			return fmt.Errorf("%s: bytes after the header are not zero", c.what)
		}
	}
	byIndex := make(map[int]Entry, len(t.Entries))
	for _, e := range t.Entries {
		byIndex[e.Index] = e
	}
	for i := 0; i < int(t.EntryCount); i++ {
		raw := primaryArray[i*entrySize : (i+1)*entrySize]
		want, used := byIndex[i+1]
		if !used {
			if !isZero(raw) {
				return fmt.Errorf("entry %d: unused slot is not zero", i+1)
			}
			continue
		}
		if got := decodeEntry(raw, i+1); got != want {
			return fmt.Errorf("entry %d: encoded as %+v, want %+v", i+1, got, want)
		}
		if !isZero(raw[56+2*utf16Len(want.Name):]) {
			return fmt.Errorf("entry %d: bytes after the name are not zero", i+1)
		}
	}
	return nil
}

// decodeEntry decodes one raw entry (Read's decoder; Encode also checks
// go-diskfs's output with it).
func decodeEntry(b []byte, index int) Entry {
	return Entry{
		Index:      index,
		Type:       guidFromDisk(b[0:16]),
		UUID:       guidFromDisk(b[16:32]),
		FirstLBA:   binary.LittleEndian.Uint64(b[32:40]),
		LastLBA:    binary.LittleEndian.Uint64(b[40:48]),
		Attributes: binary.LittleEndian.Uint64(b[48:56]),
		Name:       decodeName(b[56:entrySize]),
	}
}

// decodeName decodes a name field (UTF-16LE up to the first zero unit)
// as utf16.Decode would, unpaired surrogates becoming U+FFFD, with one
// allocation: the string.
func decodeName(field []byte) string {
	var buf [3 * nameUnits]byte // a unit is at most 3 bytes of UTF-8; a pair is 4 for 2 units
	out := buf[:0]
	unit := func(i int) rune { return rune(binary.LittleEndian.Uint16(field[2*i:])) }
	n := 0
	for n < nameUnits && unit(n) != 0 {
		n++
	}
	for i := 0; i < n; i++ {
		r := unit(i)
		if utf16.IsSurrogate(r) {
			if i+1 < n {
				if pair := utf16.DecodeRune(r, unit(i+1)); pair != utf8.RuneError {
					r = pair
					i++
				} else {
					r = utf8.RuneError
				}
			} else {
				r = utf8.RuneError
			}
		}
		out = utf8.AppendRune(out, r)
	}
	return string(out)
}

// recorder is the backend.WritableFile go-diskfs writes into: it keeps
// each written region, keyed by offset, for Encode to collect.
type recorder struct {
	size    int64
	regions map[int64][]byte
}

func (r *recorder) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > r.size {
		return 0, fmt.Errorf("write of %d bytes at offset %d is outside the %d-byte disk", len(p), off, r.size)
	}
	if _, dup := r.regions[off]; dup {
		return 0, fmt.Errorf("second write at offset %d", off)
	}
	r.regions[off] = bytes.Clone(p)
	return len(p), nil
}

// take removes and returns the region written at off, which must be n
// bytes long.
func (r *recorder) take(off, n int64) ([]byte, error) {
	b, ok := r.regions[off]
	if !ok {
		return nil, fmt.Errorf("nothing written at offset %d", off)
	}
	delete(r.regions, off)
	if int64(len(b)) != n {
		return nil, fmt.Errorf("%d bytes written at offset %d, expected %d", len(b), off, n)
	}
	return b, nil
}

func (r *recorder) leftover() error {
	for off, b := range r.regions {
		return fmt.Errorf("unexpected write of %d bytes at offset %d", len(b), off)
	}
	return nil
}

func (r *recorder) ReadAt([]byte, int64) (int, error) { return 0, errors.ErrUnsupported }
func (r *recorder) Read([]byte) (int, error)          { return 0, errors.ErrUnsupported }
func (r *recorder) Stat() (fs.FileInfo, error)        { return nil, errors.ErrUnsupported }
func (r *recorder) Close() error                      { return nil }
func (r *recorder) Seek(offset int64, whence int) (int64, error) {
	if whence == io.SeekEnd {
		return r.size + offset, nil
	}
	return 0, errors.ErrUnsupported
}
