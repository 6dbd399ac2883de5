// Package gpt is sprout's view of a GUID partition table: a plain value type
// (Table) that the planner reads and produces, a reader of its own (Read,
// Validate), and a writer that is go-diskfs's partition/gpt with a named
// guard for each of its known defects (Encode). ../../docs/gpt.md says
// which direction goes where and why; the tests check the reader against
// go-diskfs's and each guard against plain go-diskfs.
package gpt

import (
	"github.com/google/uuid"
)

// New returns an empty table for a disk of size bytes, laid out the way
// libfdisk 2.38 lays out a new GPT (what systemd-repart --empty=create or
// --empty=force and "sfdisk label: gpt" write): 128 entries of 128 bytes at
// LBA 2, the first usable LBA at 1 MiB, the backup header at the last LBA
// with its entry array just before it.
//
// libfdisk aligns to 1 MiB unless the disk is at most 4 MiB, where it uses
// the smallest possible first usable LBA (2 + array sectors). It can align
// to more than 1 MiB when the device reports an optimal I/O size above
// that (some RAID devices); New does not model that. Disks too small for
// 128 entries (under ~34 KiB), where libfdisk shrinks the array, fail
// Validate.
func New(size int64, sectorSize int, diskGUID uuid.UUID) *Table {
	t := &Table{
		SectorSize: sectorSize,
		DiskGUID:   diskGUID,
		EntryCount: defaultEntries,
		EntrySize:  entrySize,
		EntriesLBA: 2,
	}
	if sectorSize <= 0 || size < int64(sectorSize) {
		return t
	}
	sectors := uint64(size) / uint64(sectorSize)
	array := arraySectors(defaultEntries, sectorSize)
	const oneMiB = 1 << 20
	t.FirstUsableLBA = oneMiB / uint64(sectorSize)
	if sectors <= 4*oneMiB/uint64(sectorSize) {
		t.FirstUsableLBA = 2 + array
	}
	t.BackupLBA = sectors - 1
	if sectors >= 2+array {
		t.LastUsableLBA = sectors - 2 - array
	}
	return t
}

// lastLBA is the last sector of a disk of size bytes (0 for a disk
// smaller than one sector, which Validate refuses).
func (t *Table) lastLBA(size int64) uint64 {
	if t.SectorSize <= 0 || size < int64(t.SectorSize) {
		return 0
	}
	return uint64(size)/uint64(t.SectorSize) - 1
}

// Grown reports whether the disk is larger than the table says: the backup
// header is not at the disk's last LBA. This is the normal state of an
// image dd'ed onto a bigger disk.
func (t *Table) Grown(size int64) bool {
	return t.BackupLBA < t.lastLBA(size)
}

// Relocate moves the backup header to the last LBA of a disk of size bytes,
// with its entry array right before it, and sets LastUsableLBA to the
// sector before that array — what libfdisk does to a table it opens
// read-write on a grown disk, and what "sfdisk --relocate gpt-bak-std"
// writes. go-diskfs's Write does not do this on its own.
func (t *Table) Relocate(size int64) {
	last := t.lastLBA(size)
	t.BackupLBA = last
	t.LastUsableLBA = 0 // a disk too small for the table; Validate says so
	if reserved := 1 + arraySectors(t.EntryCount, t.SectorSize); last > reserved {
		t.LastUsableLBA = last - reserved
	}
}

// Entry is one used slot of the partition entry array.
type Entry struct {
	// Index is the 1-based slot number (the N of /dev/sdaN).
	Index      int
	Type       uuid.UUID
	UUID       uuid.UUID
	FirstLBA   uint64 // first sector of the partition
	LastLBA    uint64 // last sector of the partition, inclusive
	Attributes uint64
	Name       string
}

// Sectors is the partition's length in sectors.
func (e Entry) Sectors() uint64 { return e.LastLBA - e.FirstLBA + 1 }

// Table is a GPT as sprout plans with it. All LBAs are in units of
// SectorSize.
type Table struct {
	SectorSize     int
	DiskGUID       uuid.UUID
	FirstUsableLBA uint64
	LastUsableLBA  uint64
	// BackupLBA is where the backup header is (the primary header's
	// AlternateLBA). On a disk that grew it is not the last sector.
	BackupLBA uint64
	// EntryCount and EntrySize describe the entry array (normally 128 x 128).
	EntryCount uint32
	EntrySize  uint32
	// EntriesLBA is where the primary entry array starts: 2, unless a tool
	// moved it (sgdisk --move-main-table, used on some ARM boards to make
	// room for a boot loader). Encode keeps it.
	EntriesLBA uint64
	// Entries holds the used slots, sorted by Index.
	Entries []Entry

	// RecoveredFromBackup is set when the primary header or entry array was
	// invalid and the table was read from the backup copy.
	RecoveredFromBackup bool

	// The fields below are set by Read to describe damage that the next
	// Encode repairs; empty means "fine". They are messages for the user.

	// PrimaryInvalid says why the primary copy was not used (set together
	// with RecoveredFromBackup).
	PrimaryInvalid string
	// BackupInvalid says why the backup copy is unusable or disagrees with
	// the primary, when the primary was read fine.
	BackupInvalid string
	// ProtectiveMBRInvalid says what is wrong with LBA 0: no protective
	// MBR, or a size field that does not match the disk.
	ProtectiveMBRInvalid string

	// HybridMBR is set by Read when LBA 0 holds a hybrid MBR: a protective
	// record next to DOS partition records, kept for firmware that reads
	// only the MBR. Encode then leaves LBA 0 alone, as libfdisk does.
	HybridMBR bool

	// source is the copy Read decoded, as it was on disk; nil for a table
	// from New. Encode hands it to go-diskfs, which takes a table's entry
	// count and first usable LBA only from a header it reads.
	source *source
}

// Clone returns a deep copy, so a plan can derive a new table from a
// snapshot without changing it. The source bytes are shared: nothing
// changes them.
func (t *Table) Clone() *Table {
	c := *t
	c.Entries = append([]Entry(nil), t.Entries...)
	return &c
}
