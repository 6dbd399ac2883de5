package gpt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
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
// MBR. The caller syncs after the backup header and after the primary
// header: until the new backup is durable the old primary still matches the
// old backup; after it, a torn primary makes readers use the new backup.
//
// The entry arrays and headers are produced by go-diskfs's Table.Write into
// memory and checked against t before they are returned. The protective
// MBR is sprout's own (bytes 446..511 of LBA 0 only, so boot code and the
// MBR disk signature are kept). Nothing else on the disk is written; in
// particular a stale backup header left at the old end of a grown disk
// stays, as it does with libfdisk.
func (t *Table) Encode(size int64) ([]Write, error) {
	if err := t.Validate(size); err != nil {
		return nil, err
	}
	ss := int64(t.SectorSize)
	array := int64(arraySectors(t.EntryCount, t.SectorSize))
	backupLBA := int64(t.BackupLBA)

	gt, err := t.seed()
	if err != nil {
		return nil, err
	}
	// Fresh go-diskfs partitions on every call: Write fills in missing
	// GUIDs and sizes in the structs it is given, which must not leak
	// into t.
	gt.Partitions = t.diskfsPartitions()
	gt.ProtectiveMBR = false // written below, correctly for 4K sectors and > 2 TiB
	rec := &recorder{size: size, regions: map[int64][]byte{}}
	if err := gt.Write(rec, size); err != nil {
		return nil, fmt.Errorf("encoding GPT with go-diskfs: %w", err)
	}

	arrayLen := int64(t.EntryCount) * entrySize
	backupArray, err1 := rec.take((backupLBA-array)*ss, arrayLen)
	backupHeader, err2 := rec.take(backupLBA*ss, ss)
	primaryArray, err3 := rec.take(2*ss, arrayLen) // go-diskfs always puts it at LBA 2
	primaryHeader, err4 := rec.take(ss, ss)
	if err := errors.Join(err1, err2, err3, err4, rec.leftover()); err != nil {
		return nil, fmt.Errorf("go-diskfs wrote an unexpected layout: %w", err)
	}
	if err := t.checkEncoded(primaryHeader, backupHeader, primaryArray, backupArray); err != nil {
		return nil, fmt.Errorf("go-diskfs encoded the GPT wrongly: %w", err)
	}
	if t.EntriesLBA != 2 {
		primaryHeader = t.header(true, crc32.ChecksumIEEE(primaryArray)).marshal(t.SectorSize)
	}

	writes := []Write{
		{What: "backup GPT entry array", Offset: (backupLBA - array) * ss, Data: backupArray},
		{What: "backup GPT header", Offset: backupLBA * ss, Data: backupHeader},
		{What: "primary GPT entry array", Offset: int64(t.EntriesLBA) * ss, Data: primaryArray},
		{What: "primary GPT header", Offset: ss, Data: primaryHeader},
	}
	if !t.HybridMBR {
		writes = append(writes, Write{What: "protective MBR", Offset: mbrRecordsOffset, Data: protectiveMBR(uint64(size) / uint64(ss))})
	}
	return writes, nil
}

// header is the primary or backup header that stores t.
func (t *Table) header(primary bool, entriesCRC uint32) header {
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

// seed returns a go-diskfs table carrying t's header fields. go-diskfs
// keeps the first usable LBA, entry count and array positions in
// unexported fields that only its Read sets (a table it creates itself
// gets FirstUsable = 34 and 128 entries), so the header is handed to it as
// an in-memory disk holding t's primary header and an empty entry array.
func (t *Table) seed() (*diskfs.Table, error) {
	ss := t.SectorSize
	empty := make([]byte, int(t.EntryCount)*entrySize)
	h := t.header(true, crc32.ChecksumIEEE(empty))
	h.entriesLBA = 2
	img := make([]byte, 2*ss+len(empty))
	copy(img[ss:], h.marshal(ss))
	gt, err := diskfs.Read(imageFile{bytes.NewReader(img)}, ss, ss)
	if err != nil {
		return nil, fmt.Errorf("seeding go-diskfs with the GPT header: %w", err)
	}
	return gt, nil
}

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

// checkEncoded compares go-diskfs's output with t: each header must equal,
// byte for byte, the header that describes t; the two arrays must be
// identical; and every slot must decode back to exactly t's entry, or be
// zero if t does not use it.
func (t *Table) checkEncoded(primaryHeader, backupHeader, primaryArray, backupArray []byte) error {
	if !bytes.Equal(primaryArray, backupArray) {
		return errors.New("primary and backup entry arrays differ")
	}
	crc := crc32.ChecksumIEEE(primaryArray)
	want := t.header(true, crc)
	want.entriesLBA = 2
	if !bytes.Equal(primaryHeader, want.marshal(t.SectorSize)) {
		return errors.New("primary header does not match the table")
	}
	if !bytes.Equal(backupHeader, t.header(false, crc).marshal(t.SectorSize)) {
		return errors.New("backup header does not match the table")
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

// imageFile presents an in-memory disk image as the backend.File go-diskfs
// reads from (seed hands it a header that way).
type imageFile struct {
	*bytes.Reader
}

func (imageFile) Stat() (fs.FileInfo, error) { return nil, errors.ErrUnsupported }
func (imageFile) Close() error               { return nil }
