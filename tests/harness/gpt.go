package harness

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"github.com/google/uuid"
)

// The one raw GPT reader of the tests (pkg/gpt, the code under test, has
// its own): ReadRawGPT for the whole on-disk GPT of an image as the
// primary header finds it, ReadGPTCopy for one copy at one LBA and whether
// it is intact.

// GPTHeader holds the fields of a GPT header that the tests look at.
type GPTHeader struct {
	MyLBA, AlternateLBA       uint64
	FirstUsable, LastUsable   uint64
	EntriesLBA                uint64
	NumEntries, EntrySize     uint32
	HeaderSize                uint32
	HeaderCRCOK, EntriesCRCOK bool
}

// RawGPT is the on-disk GPT of an image, sector by sector: protective MBR,
// primary header and entries, backup header and entries.
type RawGPT struct {
	SectorSize     int64
	DiskSize       int64
	MBR            []byte
	Primary        GPTHeader
	PrimaryHeader  []byte // whole sector
	PrimaryEntries []byte
	Backup         GPTHeader
	BackupHeader   []byte // whole sector at Primary.AlternateLBA
	BackupEntries  []byte
}

var errNoGPT = errors.New("no GPT signature at LBA 1")

// ReadRawGPT reads the GPT structures of path assuming the given logical
// sector size. It fails when LBA 1 holds no GPT header.
func ReadRawGPT(path string, sectorSize int64) (*RawGPT, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read GPT: %w", err)
	}
	defer f.Close()
	size, err := f.Seek(0, 2)
	if err != nil {
		return nil, fmt.Errorf("read GPT of %s: %w", path, err)
	}
	r := &RawGPT{SectorSize: sectorSize, DiskSize: size}
	read := func(lba uint64, n int64) ([]byte, error) {
		buf := make([]byte, n)
		off := int64(lba) * sectorSize
		if off < 0 || off+n > size {
			return nil, fmt.Errorf("read GPT of %s: LBA %d (+%d bytes) beyond end of disk", path, lba, n)
		}
		if _, err := f.ReadAt(buf, off); err != nil {
			return nil, fmt.Errorf("read GPT of %s at LBA %d: %w", path, lba, err)
		}
		return buf, nil
	}
	if r.MBR, err = read(0, sectorSize); err != nil {
		return nil, err
	}
	if r.PrimaryHeader, err = read(1, sectorSize); err != nil {
		return nil, err
	}
	if r.Primary, err = parseHeader(r.PrimaryHeader); err != nil {
		return nil, fmt.Errorf("%s: primary header: %w", path, err)
	}
	if r.PrimaryEntries, err = read(r.Primary.EntriesLBA, entriesBytes(r.Primary)); err != nil {
		return nil, err
	}
	r.Primary.EntriesCRCOK = crc32.ChecksumIEEE(r.PrimaryEntries) == binary.LittleEndian.Uint32(r.PrimaryHeader[88:])
	if r.BackupHeader, err = read(r.Primary.AlternateLBA, sectorSize); err != nil {
		return r, nil // a backup beyond the end is reported by Diff via the empty fields
	}
	if r.Backup, err = parseHeader(r.BackupHeader); err != nil {
		return r, nil
	}
	if r.BackupEntries, err = read(r.Backup.EntriesLBA, entriesBytes(r.Backup)); err == nil {
		r.Backup.EntriesCRCOK = crc32.ChecksumIEEE(r.BackupEntries) == binary.LittleEndian.Uint32(r.BackupHeader[88:])
	}
	return r, nil
}

func entriesBytes(h GPTHeader) int64 { return int64(h.NumEntries) * int64(h.EntrySize) }

func parseHeader(sec []byte) (GPTHeader, error) {
	if len(sec) < 92 || string(sec[:8]) != "EFI PART" {
		return GPTHeader{}, errNoGPT
	}
	le := binary.LittleEndian
	h := GPTHeader{
		HeaderSize:   le.Uint32(sec[12:]),
		MyLBA:        le.Uint64(sec[24:]),
		AlternateLBA: le.Uint64(sec[32:]),
		FirstUsable:  le.Uint64(sec[40:]),
		LastUsable:   le.Uint64(sec[48:]),
		EntriesLBA:   le.Uint64(sec[72:]),
		NumEntries:   le.Uint32(sec[80:]),
		EntrySize:    le.Uint32(sec[84:]),
	}
	if h.HeaderSize < 92 || int(h.HeaderSize) > len(sec) || h.NumEntries > 4096 || h.EntrySize > 4096 {
		return h, fmt.Errorf("implausible GPT header (size %d, %d entries of %d bytes)", h.HeaderSize, h.NumEntries, h.EntrySize)
	}
	hdr := bytes.Clone(sec[:h.HeaderSize])
	clear(hdr[16:20])
	h.HeaderCRCOK = crc32.ChecksumIEEE(hdr) == le.Uint32(sec[16:])
	return h, nil
}

// GPTCopy is one copy of a GPT as found at one LBA: the header sector and
// the entry array it points at. A copy is INTACT when its header has the
// signature, a plausible size, a correct CRC and its own LBA in MyLBA, and
// its entry array (1 to 4096 entries of 128·2ⁿ bytes) lies inside the disk
// with a correct CRC — what a reader that knows only the UEFI
// specification accepts. It is independent of sprout's reader on purpose.
type GPTCopy struct {
	LBA     uint64
	Header  []byte    // the whole header sector; nil when it was not read
	Fields  GPTHeader // decoded from Header (when it has the signature)
	Entries []byte
	Problem string // why the copy is not intact; "" when it is
}

// Intact reports whether the copy is a valid GPT.
func (c GPTCopy) Intact() bool { return c.Problem == "" }

// ReadGPTCopy reads the copy whose header is at lba of disk, size bytes of
// ss-byte sectors. A copy that is not intact says why in Problem.
func ReadGPTCopy(disk io.ReaderAt, size, ss int64, lba uint64) GPTCopy {
	c := GPTCopy{LBA: lba}
	sectors := uint64(size / ss)
	if lba >= sectors {
		c.Problem = "beyond the end of the disk"
		return c
	}
	c.Header = make([]byte, ss)
	if _, err := disk.ReadAt(c.Header, int64(lba)*ss); err != nil {
		c.Problem = err.Error()
		return c
	}
	h, err := parseHeader(c.Header)
	c.Fields = h
	n := entriesBytes(h)
	switch {
	case errors.Is(err, errNoGPT):
		c.Problem = "no GPT signature"
	case err != nil:
		c.Problem = err.Error()
	case !h.HeaderCRCOK:
		c.Problem = "header CRC mismatch"
	case h.MyLBA != lba:
		c.Problem = fmt.Sprintf("header says it is at LBA %d", h.MyLBA)
	case h.NumEntries == 0 || h.EntrySize < 128 || h.EntrySize&(h.EntrySize-1) != 0 ||
		h.EntriesLBA >= sectors || int64(h.EntriesLBA)*ss+n > size:
		c.Problem = fmt.Sprintf("implausible entry array (%d entries of %d bytes at LBA %d)", h.NumEntries, h.EntrySize, h.EntriesLBA)
	}
	if c.Problem != "" {
		return c
	}
	c.Entries = make([]byte, n)
	if _, err := disk.ReadAt(c.Entries, int64(h.EntriesLBA)*ss); err != nil {
		c.Problem = err.Error()
		return c
	}
	c.Fields.EntriesCRCOK = crc32.ChecksumIEEE(c.Entries) == binary.LittleEndian.Uint32(c.Header[88:])
	if !c.Fields.EntriesCRCOK {
		c.Problem = "entry array CRC mismatch"
	}
	return c
}

// ReadGPTCopyFile is ReadGPTCopy on the image or device at path.
func ReadGPTCopyFile(path string, ss int64, lba uint64) (GPTCopy, error) {
	f, err := os.Open(path)
	if err != nil {
		return GPTCopy{}, fmt.Errorf("read GPT: %w", err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return GPTCopy{}, fmt.Errorf("read GPT of %s: %w", path, err)
	}
	return ReadGPTCopy(f, size, ss, lba), nil
}

// GPTEntry is one used entry (its type GUID is not all zeros) of an
// entry array.
type GPTEntry struct {
	Index             int // 1-based
	Type, UUID        uuid.UUID
	FirstLBA, LastLBA uint64
	Attrs             uint64
}

// UsedEntries decodes the used entries of the copy's array, in entry order.
func (c GPTCopy) UsedEntries() []GPTEntry {
	var out []GPTEntry
	size := int(c.Fields.EntrySize)
	for i := 0; size >= 128 && (i+1)*size <= len(c.Entries); i++ {
		e := c.Entries[i*size:][:128]
		typ := mixedEndianGUID(e[0:16])
		if typ == uuid.Nil {
			continue
		}
		le := binary.LittleEndian
		out = append(out, GPTEntry{Index: i + 1, Type: typ, UUID: mixedEndianGUID(e[16:32]),
			FirstLBA: le.Uint64(e[32:]), LastLBA: le.Uint64(e[40:]), Attrs: le.Uint64(e[48:])})
	}
	return out
}

// mixedEndianGUID decodes a GUID as GPT stores it (the first three fields
// little-endian).
func mixedEndianGUID(b []byte) uuid.UUID {
	var g uuid.UUID
	g[0], g[1], g[2], g[3] = b[3], b[2], b[1], b[0]
	g[4], g[5] = b[5], b[4]
	g[6], g[7] = b[7], b[6]
	copy(g[8:], b[8:16])
	return g
}

// HasGPT reports whether LBA 1 of path holds a GPT header.
func HasGPT(path string, sectorSize int64) (bool, error) {
	_, err := ReadRawGPT(path, sectorSize)
	if errors.Is(err, errNoGPT) {
		return false, nil
	}
	return err == nil, err
}

// BackupMisplaced reports whether path has a GPT whose backup header is not
// in the last sector (an image that was copied onto a bigger disk).
func BackupMisplaced(path string, sectorSize int64) (bool, error) {
	r, err := ReadRawGPT(path, sectorSize)
	if errors.Is(err, errNoGPT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return r.Primary.AlternateLBA != uint64(r.DiskSize/sectorSize)-1, nil
}

// DiffRaw compares two on-disk GPTs byte for byte, region by region, and
// explains each difference with the decoded header fields.
func DiffRaw(want, got *RawGPT) []string {
	var d []string
	region := func(name string, w, g []byte) {
		if bytes.Equal(w, g) {
			return
		}
		if len(w) != len(g) {
			d = append(d, fmt.Sprintf("%s: want %d bytes, got %d", name, len(w), len(g)))
			return
		}
		i := 0
		for w[i] == g[i] {
			i++
		}
		d = append(d, fmt.Sprintf("%s: first difference at byte %d (want % x, got % x)", name, i,
			w[i:min(i+16, len(w))], g[i:min(i+16, len(g))]))
	}
	region("protective MBR", want.MBR, got.MBR)
	region("primary header", want.PrimaryHeader, got.PrimaryHeader)
	region("primary entries", want.PrimaryEntries, got.PrimaryEntries)
	region("backup header", want.BackupHeader, got.BackupHeader)
	region("backup entries", want.BackupEntries, got.BackupEntries)
	if want.Primary != got.Primary {
		d = append(d, fmt.Sprintf("primary header fields: want %+v, got %+v", want.Primary, got.Primary))
	}
	if want.Backup != got.Backup {
		d = append(d, fmt.Sprintf("backup header fields: want %+v, got %+v", want.Backup, got.Backup))
	}
	return d
}
