package gpt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Read reads the GPT of a disk of size bytes whose logical sectors are
// sectorSize bytes (512, 1024, 2048 or 4096).
//
// Read is sprout's own decoder, because go-diskfs's cannot serve this
// direction (docs/gpt.md, "Reading"): its Table does not tell the planner
// the first usable LBA or the entry count, it allocates whatever entry
// array a CRC-valid header asks for (0xFFFFFFFF entries kill the
// process), and it never looks at the backup while the primary is fine.
// Read checks both copies and decodes the chosen one. Every boot runs it,
// so it reads each GPT area once into one buffer and allocates little.
// The tests decode what Read accepts with go-diskfs's gpt.Read and
// compare (diskfsAgrees). It never uses go-diskfs's GetPartitionTable,
// which silently falls back to reading the protective MBR as a DOS table.
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
	d := &disk{r: r, sectorSize: sectorSize, sectors: uint64(size) / uint64(sectorSize)}
	lastLBA := d.sectors - 1

	// The usual layout: protective MBR, header and 128 entries from LBA 0.
	d.prefetch(0, 2+arraySectors(defaultEntries, sectorSize))
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
	// The usual backup: 128 entries just before its header.
	if n := arraySectors(defaultEntries, sectorSize); backupLBA < d.sectors && backupLBA >= n {
		d.prefetch(backupLBA-n, n+1)
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
		t = decode(primary, d.sectorSize)
		if err == nil {
			t.BackupLBA = primary.hdr.alternateLBA
			t.EntriesLBA = primary.hdr.entriesLBA
			t.BackupInvalid = backupMismatch(primary, backup)
		}
	case backup.problem == nil:
		t = decode(backup, d.sectorSize)
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
	t.ProtectiveMBRInvalid = mbr.problem(d.sectors, t.BackupLBA+1)
	t.HybridMBR = mbr.kind == mbrHybrid
	return t, nil
}

// disk reads whole sectors of the device.
type disk struct {
	r          io.ReaderAt
	sectorSize int
	sectors    uint64
	windows    []window // areas read ahead; readSectors serves from them
}

// window is a run of sectors already in memory.
type window struct {
	lba  uint64
	data []byte
}

// prefetch reads count sectors from lba in one read, so that the header
// and entry array inside them cost no read and no buffer of their own. A
// failed read is forgotten: readSectors then reads (and reports) the
// sectors it is asked for.
func (d *disk) prefetch(lba, count uint64) {
	count = min(count, d.sectors-lba)
	b := make([]byte, count*uint64(d.sectorSize))
	if n, _ := d.r.ReadAt(b, int64(lba)*int64(d.sectorSize)); n == len(b) {
		d.windows = append(d.windows, window{lba, b})
	}
}

func (d *disk) readSectors(lba, count uint64) ([]byte, error) {
	ss := uint64(d.sectorSize)
	for _, w := range d.windows {
		if end := w.lba + uint64(len(w.data))/ss; lba >= w.lba && lba < end && count <= end-lba {
			return w.data[(lba-w.lba)*ss : (lba-w.lba+count)*ss : (lba-w.lba+count)*ss], nil
		}
	}
	b := make([]byte, count*ss)
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
func (d *disk) examine(lba uint64, primary bool) (gptCopy, error) {
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
	if crc := crc32IEEE(c.array); crc != c.hdr.entriesCRC {
		c.problem = fmt.Errorf("entry array at LBA %d: CRC mismatch (stored %08x, computed %08x)", c.hdr.entriesLBA, c.hdr.entriesCRC, crc)
		return c, nil
	}
	c.problem = checkExtents(usedExtents(c.array), c.hdr.firstUsable, c.hdr.lastUsable)
	return c, nil
}

// checkLayout checks a CRC-valid header's LBAs against each other and the
// disk, so that nothing it points at overlaps the usable area or lies
// beyond the disk's end.
func (d *disk) checkLayout(h header, lba uint64, primary bool) error {
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
func (d *disk) refuseNonGPT(mbr mbrSector, primary, backup gptCopy, lastLBA uint64) error {
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
func (d *disk) gptAtOtherSectorSize() int {
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

// decode turns a checked copy into a Table.
func decode(c gptCopy, sectorSize int) *Table {
	t := &Table{
		SectorSize:     sectorSize,
		DiskGUID:       c.hdr.diskGUID,
		FirstUsableLBA: c.hdr.firstUsable,
		LastUsableLBA:  c.hdr.lastUsable,
		EntryCount:     c.hdr.entryCount,
		EntrySize:      c.hdr.entrySize,
		source:         &source{headerLBA: c.lba, header: c.sector, arrayLBA: c.hdr.entriesLBA, array: c.array},
	}
	exts := usedExtents(c.array)
	t.Entries = make([]Entry, 0, len(exts))
	for _, x := range exts {
		t.Entries = append(t.Entries, decodeEntry(c.array[(x.index-1)*entrySize:x.index*entrySize], x.index))
	}
	return t
}
