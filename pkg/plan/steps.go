package plan

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/encryption"
	"github.com/sprout-initrd/sprout/pkg/gpt"
)

// Step is one action of a plan. The dry run prints steps; apply executes
// them in order. Steps that only edit the partition table (RelocateBackup
// without a table of its own,
// GrowEntry, AddEntry, UpdateEntry) are already folded into Plan.New and
// reach the disk through WriteTable.
type Step interface {
	// Describe says what the step does, for the dry run and the log.
	Describe() string
}

// tableEdit is a step that changes the in-memory table.
type tableEdit interface {
	edit(t *gpt.Table)
}

// CreateTable starts from an empty GPT (--empty=allow/require/force/create).
type CreateTable struct{ DiskGUID uuid.UUID }

func (s CreateTable) Describe() string {
	return fmt.Sprintf("create a new GPT (disk GUID %s)", s.DiskGUID)
}

// RelocateBackup moves the backup GPT of a disk that grew to its real end
// and makes the new space usable.
//
// When new partitions are made, the old backup GPT usually lies inside
// the first one, and wiping that range would leave the disk with a single
// valid copy until the new table is written. So then the old table,
// relocated, is written first (Table): from that moment both copies are
// valid and the old backup area is free space.
type RelocateBackup struct {
	OldBackupLBA, NewBackupLBA         uint64
	OldLastUsableLBA, NewLastUsableLBA uint64
	// Table is the old table with its backup moved, written before any
	// new partition's range is touched; nil when the relocation is only
	// written together with the new table.
	Table *gpt.Table
}

func (s RelocateBackup) Describe() string {
	d := fmt.Sprintf("move the backup GPT from LBA %d to the end of the disk (LBA %d); last usable LBA %d → %d",
		s.OldBackupLBA, s.NewBackupLBA, s.OldLastUsableLBA, s.NewLastUsableLBA)
	if s.Table != nil {
		d += " (written now: backup copy, then primary copy, each synced)"
	}
	return d
}

// RepairTable rewrites a table whose primary or backup copy is damaged.
type RepairTable struct{ Reason string }

func (s RepairTable) Describe() string { return "repair the GPT: " + s.Reason }

// WipeRange clears the byte range of a future partition of old
// signatures (its first and last WipeSpan are zeroed; DiscardRange, when
// allowed, discards what lies between) before its entry exists, so the
// new partition never shows what the space held before.
type WipeRange struct {
	Index        int
	Offset, Size uint64
}

func (s WipeRange) Describe() string {
	return fmt.Sprintf("wipe old signatures from future partition %d (%s at offset %d)", s.Index, FormatBytes(s.Size), s.Offset)
}

// FormatPartition makes a file system in the byte range of a future
// partition, before the partition's entry exists.
type FormatPartition struct {
	Index        int
	Offset, Size uint64
	Format       string
	Label        string // the partition label; mkfs shortens it per file system
	UUID         uuid.UUID
	// Encrypted: the file system is made inside the partition's LUKS2
	// volume (EncryptPartition, the step before), not on the range.
	Encrypted bool
	// SectorSize is the sector size the file system is made for when it
	// is not the disk's: 4096 in an image file from systemd 257 on (the
	// formats whose tool takes one: vfat). 0: the device's.
	SectorSize int
}

func (s FormatPartition) Describe() string {
	where := fmt.Sprintf("future partition %d (%s at offset %d)", s.Index, FormatBytes(s.Size), s.Offset)
	if s.Encrypted {
		where = fmt.Sprintf("the LUKS2 volume of future partition %d (%s)", s.Index, FormatBytes(s.FileSystemSize()))
	}
	if s.SectorSize != 0 {
		return fmt.Sprintf("format %s as %s with %d-byte sectors, label %q, UUID %s", where, s.Format, s.SectorSize, s.Label, s.UUID)
	}
	return fmt.Sprintf("format %s as %s, label %q, UUID %s", where, s.Format, s.Label, s.UUID)
}

// FileSystemSize is the size of the file system: the range, less the
// LUKS2 header when it is encrypted.
func (s FormatPartition) FileSystemSize() uint64 {
	if s.Encrypted {
		return s.Size - min(s.Size, encryption.MetadataSize)
	}
	return s.Size
}

// GrowEntry makes an existing partition larger; its start never moves.
type GrowEntry struct {
	Index            int
	OldSize, NewSize uint64
	LastLBA          uint64
}

func (s GrowEntry) Describe() string {
	return fmt.Sprintf("grow partition %d from %s to %s", s.Index, FormatBytes(s.OldSize), FormatBytes(s.NewSize))
}

func (s GrowEntry) edit(t *gpt.Table) {
	for i := range t.Entries {
		if t.Entries[i].Index == s.Index {
			t.Entries[i].LastLBA = s.LastLBA
		}
	}
}

// AddEntry adds a new partition to the table.
type AddEntry struct{ Entry gpt.Entry }

func (s AddEntry) Describe() string {
	return fmt.Sprintf("add partition %d %q (sectors %d–%d)", s.Entry.Index, s.Entry.Name, s.Entry.FirstLBA, s.Entry.LastLBA)
}

func (s AddEntry) edit(t *gpt.Table) {
	t.Entries = append(t.Entries, s.Entry)
	sortEntries(t.Entries)
}

// UpdateEntry gives an existing partition a missing label or UUID.
type UpdateEntry struct {
	Index int
	UUID  uuid.UUID
	Name  string
}

func (s UpdateEntry) Describe() string {
	return fmt.Sprintf("set label %q and UUID %s of partition %d", s.Name, s.UUID, s.Index)
}

func (s UpdateEntry) edit(t *gpt.Table) {
	for i := range t.Entries {
		if t.Entries[i].Index == s.Index {
			t.Entries[i].UUID, t.Entries[i].Name = s.UUID, s.Name
		}
	}
}

// WriteTable writes Plan.New: backup copy first, then the primary.
type WriteTable struct{}

func (WriteTable) Describe() string {
	return "write the partition table: backup entries, backup header, primary entries, primary header, protective MBR (each synced before the next)"
}

// TellKernel makes the kernel's view of a block device match the written
// table: it adds new and resizes grown partitions (and adds any other the
// kernel lacks), leaving matching ones alone.
type TellKernel struct{ Add, Resize []int }

func (s TellKernel) Describe() string {
	var parts []string
	if len(s.Add) > 0 {
		parts = append(parts, fmt.Sprintf("add partitions %v", s.Add))
	}
	if len(s.Resize) > 0 {
		parts = append(parts, fmt.Sprintf("resize partitions %v", s.Resize))
	}
	if len(parts) == 0 {
		return "tell the kernel about any partition it does not know yet"
	}
	return "tell the kernel: " + strings.Join(parts, ", ")
}

// WaitForUdev waits until udev created the device links of the new
// partitions, so the mounts ordered after sprout find them.
type WaitForUdev struct {
	Partitions []int
	Links      []string
}

func (s WaitForUdev) Describe() string {
	return "wait for udev: " + strings.Join(s.Links, " ")
}

func sortEntries(es []gpt.Entry) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j].Index < es[j-1].Index; j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

// FormatBytes prints a size the way systemd does in tables: base 1024,
// with one decimal that is cut, not rounded ("64.0M", "40.7M", "512B").
func FormatBytes(v uint64) string {
	const units = "KMGTPE"
	if v < 1024 {
		return strconv.FormatUint(v, 10) + "B"
	}
	unit, u := uint64(1024), 0
	for v/unit >= 1024 && u < len(units)-1 {
		unit *= 1024
		u++
	}
	tenths := (v % unit) * 10 / unit
	// "%d.%d%c", without fmt: every boot's table shows sizes.
	return string(append(strconv.AppendUint(nil, v/unit, 10), '.', byte('0'+tenths), units[u]))
}
