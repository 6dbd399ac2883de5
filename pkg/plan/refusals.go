package plan

// Whether a plan can run is decided here, from the snapshot and the
// capabilities passed in, so that a dry run and a real run refuse the
// same things, before any write.

import (
	"fmt"

	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/encryption"
	"github.com/sprout-initrd/sprout/pkg/fstype"
	"github.com/sprout-initrd/sprout/pkg/gpt"
)

// FormatError is a refusal because a new partition's file system cannot
// be made.
type FormatError struct {
	Index int // the future partition
	Err   error
}

func (e *FormatError) Error() string { return fmt.Sprintf("future partition %d: %v", e.Index, e.Err) }

func (e *FormatError) Unwrap() error { return e.Err }

// checkFormats refuses a plan with a file system the system cannot make
// (no mkfs program, or a partition too small for it), so that the run
// stops before its first write instead of in the middle, in mkfs.
func checkFormats(steps []Step, v compat.Version, can fstype.Capabilities, crypt encryption.Capabilities) error {
	for i, s := range steps {
		switch s := s.(type) {
		case EncryptPartition:
			// CheckVolume also records which systemd-cryptenroll will
			// enroll the volume: the step carries it to the writer.
			if err := crypt.CheckVolume(s.Mode, &s.Settings); err != nil {
				return &FormatError{Index: s.Index, Err: err}
			}
			steps[i] = s
		case FormatPartition:
			if err := can.Check(v, s.Format, int64(s.FileSystemSize())); err != nil {
				return &FormatError{Index: s.Index, Err: err}
			}
		}
	}
	return nil
}

// checkPreserved is the planner's promise as an assertion: every existing
// partition is still there, at the same start, and no smaller.
func checkPreserved(old, new *gpt.Table) error {
	if old == nil {
		return nil
	}
	for _, o := range old.Entries {
		found := false
		for _, n := range new.Entries {
			if n.Index != o.Index {
				continue
			}
			found = true
			if n.FirstLBA != o.FirstLBA || n.LastLBA < o.LastLBA || n.Type != o.Type {
				return fmt.Errorf("internal error: the plan would move, shrink or retype partition %d (LBA %d–%d → %d–%d); refusing", o.Index, o.FirstLBA, o.LastLBA, n.FirstLBA, n.LastLBA)
			}
		}
		if !found {
			return fmt.Errorf("internal error: the plan would remove partition %d; refusing", o.Index)
		}
	}
	return nil
}

func decideScratch(snap Snapshot, mode EmptyMode) (bool, error) {
	switch mode {
	case EmptyForce, EmptyCreate:
		return true, nil
	case EmptyRequire:
		if snap.Label != LabelNone {
			return false, &LabelError{"the disk already has a partition table, refusing (--empty=require)"}
		}
		return true, nil
	case EmptyAllow:
		switch snap.Label {
		case LabelNone:
			return true, nil
		case LabelOther:
			return false, &LabelError{fmt.Sprintf("the disk has a %s partition table, not GPT, refusing", snap.OtherLabel)}
		}
		return false, nil
	case EmptyRefuse, "":
		switch snap.Label {
		case LabelNone:
			return false, &LabelError{"the disk has no GPT partition table, not repartitioning (see --empty=)"}
		case LabelOther:
			return false, &LabelError{fmt.Sprintf("the disk has a %s partition table, not GPT, not repartitioning", snap.OtherLabel)}
		}
		return false, nil
	}
	return false, fmt.Errorf("unknown --empty= mode %q", mode)
}

// checkFits refuses a table that claims more disk than there is — the
// image was written to a smaller disk, and its backup GPT and the end of
// its last partitions are missing.
func checkFits(snap Snapshot) error {
	last := snap.Size/uint64(snap.SectorSize) - 1
	t := snap.Table
	if t.BackupLBA > last || t.LastUsableLBA >= last {
		return fmt.Errorf("the disk (%d sectors) is smaller than its GPT claims (backup header at LBA %d): was the image written to a smaller disk?", last+1, t.BackupLBA)
	}
	for _, e := range t.Entries {
		if e.LastLBA > last {
			return fmt.Errorf("partition %d ends at LBA %d, past the end of the disk (LBA %d): was the image written to a smaller disk?", e.Index, e.LastLBA, last)
		}
	}
	return nil
}

func checkSlots(placed []*member, t *gpt.Table) error {
	for _, m := range placed {
		if m.index > int(t.EntryCount) {
			return fmt.Errorf("no free slot in the partition entry array (%d entries) for %s", t.EntryCount, m.def.File)
		}
	}
	return nil
}
