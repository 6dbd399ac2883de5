package gpt

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"slices"
	"strings"

	diskfs "github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/google/uuid"
)

// Read reads the GPT of a disk of size bytes whose logical sectors are
// sectorSize bytes (512, 1024, 2048 or 4096).
//
// It checks both copies itself before go-diskfs sees them — go-diskfs
// allocates whatever entry array a header asks for, checks no LBAs and
// never looks at the backup while the primary is fine — and then decodes
// the chosen copy with go-diskfs's gpt.Read. It never uses go-diskfs's
// GetPartitionTable, which silently falls back to reading the protective
// MBR as a DOS table.
//
// Errors wrap ErrNoLabel, ErrOtherLabel or ErrCorrupt (or are I/O errors).
// A damaged primary with a good backup is not an error: the table comes
// back with RecoveredFromBackup set. Damage to the backup or the
// protective MBR is reported in BackupInvalid and ProtectiveMBRInvalid.
func Read(r io.ReaderAt, size int64, sectorSize int) (*Table, error) {
	if !validSectorSize(sectorSize) {
		return nil, fmt.Errorf("reading GPT: sector size %d is not one of 512, 1024, 2048, 4096", sectorSize)
	}
	if size < 3*int64(sectorSize) {
		return nil, fmt.Errorf("%w: disk of %d bytes is too small for a GPT", ErrNoLabel, size)
	}
	d := disk{r: r, sectorSize: sectorSize, sectors: uint64(size) / uint64(sectorSize)}
	lastLBA := d.sectors - 1

	lba0, err := d.readSectors(0, 1)
	if err != nil {
		return nil, err
	}
	mbr := classifyMBR(lba0)

	primary, err := d.examine(1, true)
	if err != nil {
		return nil, err
	}
	backupLBA := lastLBA
	if primary.problem == nil {
		backupLBA = primary.hdr.alternateLBA
	}
	backup, err := d.examine(backupLBA, false)
	if err != nil {
		return nil, err
	}

	if err := d.refuseNonGPT(mbr, primary, backup, lastLBA); err != nil {
		return nil, err
	}

	var t *Table
	switch {
	case primary.problem == nil:
		t, err = d.decode(primary, false, lba0)
		if err == nil {
			t.BackupLBA = primary.hdr.alternateLBA
			t.EntriesLBA = primary.hdr.entriesLBA
			t.BackupInvalid = backupMismatch(primary, backup)
		}
	case backup.problem == nil:
		t, err = d.decode(backup, true, lba0)
		if err == nil {
			t.BackupLBA = backup.hdr.myLBA
			// Where a tool rebuilding the primary puts its array (libfdisk
			// does the same); Validate checks it stays out of the usable area.
			t.EntriesLBA = 2
			t.RecoveredFromBackup = true
			t.PrimaryInvalid = fmt.Sprintf("primary GPT at LBA 1: %v", primary.problem)
		}
	default:
		return nil, fmt.Errorf("%w: primary GPT at LBA 1: %v; backup GPT at LBA %d: %v",
			ErrCorrupt, primary.problem, backupLBA, backup.problem)
	}
	if err != nil {
		return nil, err
	}
	t.ProtectiveMBRInvalid = mbr.problem(d.sectors, t.BackupLBA+1)
	t.HybridMBR = mbr.kind == mbrHybrid
	return t, nil
}

// disk reads whole sectors of the device.
type disk struct {
	r          io.ReaderAt
	sectorSize int
	sectors    uint64
}

func (d disk) readSectors(lba, count uint64) ([]byte, error) {
	b := make([]byte, count*uint64(d.sectorSize))
	// A full read may come with io.EOF at the end of the device.
	if n, err := d.r.ReadAt(b, int64(lba)*int64(d.sectorSize)); n < len(b) {
		return nil, fmt.Errorf("reading LBA %d-%d: %w", lba, lba+count-1, err)
	}
	return b, nil
}

// gptCopy is one of the two copies of the table as found on disk.
type gptCopy struct {
	lba     uint64
	present bool  // the sector carries the "EFI PART" signature
	problem error // why the copy cannot be used; nil when it can
	hdr     header
	sector  []byte // the header sector as read
	array   []byte
}

// examine checks the copy whose header is at lba. Only I/O failures are
// returned as errors; everything wrong with the data goes into problem.
func (d disk) examine(lba uint64, primary bool) (gptCopy, error) {
	c := gptCopy{lba: lba}
	if lba == 0 || lba >= d.sectors {
		c.problem = fmt.Errorf("header LBA %d is outside the disk (last LBA %d)", lba, d.sectors-1)
		return c, nil
	}
	sector, err := d.readSectors(lba, 1)
	if err != nil {
		return c, err
	}
	c.sector = sector
	c.hdr, c.problem = parseHeader(sector)
	if errors.Is(c.problem, errNoSignature) {
		return c, nil
	}
	c.present = true
	if c.problem != nil {
		return c, nil
	}
	if c.problem = d.checkLayout(c.hdr, lba, primary); c.problem != nil {
		return c, nil
	}
	// checkLayout bounded the array size and put it inside the disk.
	c.array, err = d.readSectors(c.hdr.entriesLBA, arraySectors(c.hdr.entryCount, d.sectorSize))
	if err != nil {
		return c, err
	}
	if crc := crc32.ChecksumIEEE(c.array); crc != c.hdr.entriesCRC {
		c.problem = fmt.Errorf("entry array at LBA %d: CRC mismatch (stored %08x, computed %08x)", c.hdr.entriesLBA, c.hdr.entriesCRC, crc)
		return c, nil
	}
	c.problem = checkExtents(usedExtents(c.array), c.hdr.firstUsable, c.hdr.lastUsable)
	return c, nil
}

// checkLayout checks a CRC-valid header's LBAs against each other and the
// disk, so that nothing it points at overlaps the usable area or lies
// beyond the disk's end.
func (d disk) checkLayout(h header, lba uint64, primary bool) error {
	last := d.sectors - 1
	if h.myLBA != lba {
		return fmt.Errorf("header found at LBA %d says it is at LBA %d", lba, h.myLBA)
	}
	if err := checkArrayShape(h.entryCount, h.entrySize, d.sectorSize); err != nil {
		return err
	}
	array := arraySectors(h.entryCount, d.sectorSize)
	switch {
	case h.firstUsable > h.lastUsable:
		return fmt.Errorf("first usable LBA %d is after last usable LBA %d", h.firstUsable, h.lastUsable)
	case h.lastUsable > last:
		return fmt.Errorf("last usable LBA %d is beyond the disk's last LBA %d (the disk is smaller than the GPT claims)", h.lastUsable, last)
	}
	if primary {
		switch {
		case h.alternateLBA > last:
			return fmt.Errorf("backup header LBA %d is beyond the disk's last LBA %d (the disk is smaller than the GPT claims)", h.alternateLBA, last)
		case h.alternateLBA <= h.lastUsable+array:
			return fmt.Errorf("backup header LBA %d leaves no room for the backup entry array after last usable LBA %d", h.alternateLBA, h.lastUsable)
		case h.entriesLBA < 2 || h.entriesLBA >= h.firstUsable || array > h.firstUsable-h.entriesLBA:
			return fmt.Errorf("entry array at LBA %d (%d sectors) overlaps the headers or the usable area starting at LBA %d", h.entriesLBA, array, h.firstUsable)
		}
		return nil
	}
	switch {
	case h.alternateLBA != 1:
		return fmt.Errorf("backup header points to a primary header at LBA %d, not 1", h.alternateLBA)
	case h.firstUsable < 2+array:
		// The primary rebuilt from this copy needs its array at LBA 2.
		return fmt.Errorf("first usable LBA %d leaves no room for the primary entry array at LBA 2-%d", h.firstUsable, 1+array)
	case lba <= h.lastUsable+array:
		return fmt.Errorf("last usable LBA %d leaves no room for the backup entry array before the header", h.lastUsable)
	case h.entriesLBA <= h.lastUsable || h.entriesLBA >= lba || array > lba-h.entriesLBA:
		return fmt.Errorf("entry array at LBA %d (%d sectors) overlaps the usable area ending at LBA %d or the header", h.entriesLBA, array, h.lastUsable)
	}
	return nil
}

// backupMismatch describes why a valid primary's backup cannot serve as
// its copy: damaged, missing, or describing a different table.
func backupMismatch(primary, backup gptCopy) string {
	if backup.problem != nil {
		return fmt.Sprintf("backup GPT at LBA %d: %v", backup.lba, backup.problem)
	}
	p, b := primary.hdr, backup.hdr
	var diffs []string
	if p.diskGUID != b.diskGUID {
		diffs = append(diffs, "disk GUID")
	}
	if p.firstUsable != b.firstUsable || p.lastUsable != b.lastUsable {
		diffs = append(diffs, "usable LBA range")
	}
	if p.entryCount != b.entryCount || !bytes.Equal(primary.array, backup.array) {
		diffs = append(diffs, "partition entries")
	}
	if len(diffs) == 0 {
		return ""
	}
	return fmt.Sprintf("backup GPT at LBA %d differs from the primary (%s)", backup.lba, strings.Join(diffs, ", "))
}

// refuseNonGPT returns ErrOtherLabel, ErrNoLabel or ErrCorrupt when the
// disk is not (recognisably) GPT-partitioned.
func (d disk) refuseNonGPT(mbr mbrSector, primary, backup gptCopy, lastLBA uint64) error {
	if mbr.kind == mbrDOS {
		// Like libfdisk and the kernel: without a 0xEE record the MBR is the
		// disk's label, even if stale GPT headers survived.
		msg := fmt.Sprintf("LBA 0 holds an MBR with %d partition records and no protective (0xEE) record", mbr.used)
		if mbr.used == 0 {
			msg = "LBA 0 holds a boot signature but no partition records (an empty MBR or a boot sector)"
		}
		if primary.present || backup.present {
			msg += "; leftover GPT headers are ignored"
		}
		return fmt.Errorf("%w: %s", ErrOtherLabel, msg)
	}
	if primary.present || backup.present {
		return nil
	}
	if other := d.gptAtOtherSectorSize(); other != 0 {
		return fmt.Errorf("%w: no GPT header for %d-byte sectors, but there is one at byte %d: the table was written for %d-byte sectors",
			ErrCorrupt, d.sectorSize, other, other)
	}
	if mbr.kind != mbrNone {
		return fmt.Errorf("%w: LBA 0 holds a protective MBR but there is no GPT header at LBA 1 or at the last LBA %d", ErrCorrupt, lastLBA)
	}
	return fmt.Errorf("%w: no GPT header at LBA 1 or at the last LBA %d, and no MBR boot signature in LBA 0", ErrNoLabel, lastLBA)
}

// gptAtOtherSectorSize returns another sector size at whose LBA 1 a GPT
// signature sits (an image made for 4K sectors read as 512, or the other
// way round), or 0.
func (d disk) gptAtOtherSectorSize() int {
	for _, ss := range []int{512, 1024, 2048, 4096} {
		if ss == d.sectorSize || uint64(2*ss) > d.sectors*uint64(d.sectorSize) {
			continue
		}
		sig := make([]byte, len(headerSignature))
		if n, _ := d.r.ReadAt(sig, int64(ss)); n == len(sig) && string(sig) == headerSignature {
			return ss
		}
	}
	return 0
}

// decode has go-diskfs parse the copy that sprout checked and converts
// the result. go-diskfs keeps FirstUsableLBA, the entry count and the
// entry size private, so those come from sprout's own parse of the same
// header; what go-diskfs does expose is cross-checked against it.
func (d disk) decode(c gptCopy, fromBackup bool, lba0 []byte) (*Table, error) {
	ss := int64(d.sectorSize)
	view := &diskView{
		r:          d.r,
		size:       int64(d.sectors) * int64(d.sectorSize),
		sectorSize: d.sectorSize,
		// go-diskfs reads the backup only when the primary fails its own
		// checks, and looks for it at the last LBA, where examine found it.
		hidePrimary: fromBackup,
		// What examine read already; go-diskfs would read it again.
		cached: []cachedRange{{0, lba0}, {int64(c.lba) * ss, c.sector}, {int64(c.hdr.entriesLBA) * ss, c.array}},
	}
	gt, err := diskfs.Read(view, d.sectorSize, d.sectorSize)
	if err != nil {
		return nil, fmt.Errorf("go-diskfs rejected the GPT at LBA %d that passed sprout's checks: %w", c.lba, err)
	}
	if gt.RecoveredFromBackup != fromBackup {
		return nil, fmt.Errorf("go-diskfs read the wrong copy of the GPT (from backup: %v)", gt.RecoveredFromBackup)
	}
	t := &Table{
		SectorSize:     d.sectorSize,
		DiskGUID:       c.hdr.diskGUID,
		FirstUsableLBA: c.hdr.firstUsable,
		LastUsableLBA:  c.hdr.lastUsable,
		EntryCount:     c.hdr.entryCount,
		EntrySize:      c.hdr.entrySize,
	}
	if gt.LastDataSector() != c.hdr.lastUsable || !strings.EqualFold(gt.GUID, c.hdr.diskGUID.String()) {
		return nil, fmt.Errorf("go-diskfs decoded the GPT at LBA %d differently (last usable LBA %d, disk GUID %s)", c.lba, gt.LastDataSector(), gt.GUID)
	}
	for _, p := range gt.Partitions {
		e, err := entryFromDiskfs(p)
		if err != nil {
			return nil, fmt.Errorf("GPT at LBA %d: %w", c.lba, err)
		}
		t.Entries = append(t.Entries, e)
	}
	slices.SortFunc(t.Entries, func(a, b Entry) int { return a.Index - b.Index })
	exts := usedExtents(c.array)
	if len(exts) != len(t.Entries) {
		return nil, fmt.Errorf("go-diskfs found %d used entries in the GPT at LBA %d, sprout %d", len(t.Entries), c.lba, len(exts))
	}
	for i, x := range exts {
		raw := c.array[(x.index-1)*entrySize : x.index*entrySize]
		if want := decodeEntry(raw, x.index); t.Entries[i] != want {
			return nil, fmt.Errorf("go-diskfs decoded entry %d of the GPT at LBA %d as %+v, sprout as %+v", x.index, c.lba, t.Entries[i], want)
		}
	}
	return t, nil
}

func entryFromDiskfs(p *diskfs.Partition) (Entry, error) {
	typ, err := uuid.Parse(string(p.Type))
	if err != nil {
		return Entry{}, fmt.Errorf("entry %d: type GUID: %w", p.Index, err)
	}
	id, err := uuid.Parse(p.GUID)
	if err != nil {
		return Entry{}, fmt.Errorf("entry %d: unique GUID: %w", p.Index, err)
	}
	return Entry{
		Index:      p.Index,
		Type:       typ,
		UUID:       id,
		FirstLBA:   p.Start,
		LastLBA:    p.End,
		Attributes: p.Attributes,
		Name:       p.Name,
	}, nil
}

// diskView presents an io.ReaderAt as the backend.File go-diskfs reads
// from. With hidePrimary set, LBA 1 reads as zeros, which makes go-diskfs
// take the backup copy.
type diskView struct {
	r           io.ReaderAt
	size        int64
	sectorSize  int
	hidePrimary bool
	cached      []cachedRange
	pos         int64
}

// cachedRange is a byte range of the disk already in memory.
type cachedRange struct {
	off  int64
	data []byte
}

// fromCache fills p from the cached ranges, if they cover all of it.
func (v *diskView) fromCache(p []byte, off int64) bool {
	for len(p) > 0 {
		i := slices.IndexFunc(v.cached, func(c cachedRange) bool { return off >= c.off && off < c.off+int64(len(c.data)) })
		if i < 0 {
			return false
		}
		c := v.cached[i]
		n := copy(p, c.data[off-c.off:])
		p, off = p[n:], off+int64(n)
	}
	return true
}

func (v *diskView) ReadAt(p []byte, off int64) (int, error) {
	n, err := len(p), error(nil)
	if !v.fromCache(p, off) {
		n, err = v.r.ReadAt(p, off)
	}
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

func (v *diskView) Seek(offset int64, whence int) (int64, error) {
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

func (v *diskView) Read(p []byte) (int, error) {
	n, err := v.ReadAt(p, v.pos)
	v.pos += int64(n)
	return n, err
}

func (v *diskView) Stat() (fs.FileInfo, error) { return nil, errors.ErrUnsupported }
func (v *diskView) Close() error               { return nil }
