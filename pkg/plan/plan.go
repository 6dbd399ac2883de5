// Package plan turns partition definitions and a snapshot of a disk into a
// Plan: the partitions the disk will have and the ordered steps that get it
// there. It is a pure function — no I/O, no clock, no randomness except
// what the caller passes in — so a dry run prints exactly what a real run
// executes, and tests assert on plans without touching a disk.
package plan

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/encryption"
	"github.com/sprout-initrd/sprout/pkg/fstype"
	"github.com/sprout-initrd/sprout/pkg/gpt"
	"github.com/sprout-initrd/sprout/pkg/repartd"
)

// EmptyMode is --empty=: what to do with a disk without a GPT.
type EmptyMode string

const (
	EmptyRefuse  EmptyMode = "refuse"  // no GPT: refuse (exit 77)
	EmptyAllow   EmptyMode = "allow"   // blank disk: create a GPT; other label: refuse
	EmptyRequire EmptyMode = "require" // any label: refuse; blank: create
	EmptyForce   EmptyMode = "force"   // always start from an empty GPT
	EmptyCreate  EmptyMode = "create"  // like force, for a new image file
)

// LabelKind says what the disk carries.
type LabelKind int

const (
	LabelNone  LabelKind = iota // nothing recognisable: a blank disk
	LabelGPT                    // a valid GPT (Snapshot.Table)
	LabelOther                  // another partition table, e.g. MBR
)

// Snapshot is everything the planner knows about the disk.
type Snapshot struct {
	Size       uint64 // bytes
	SectorSize int    // logical sector size in bytes
	Label      LabelKind
	Table      *gpt.Table // when Label == LabelGPT
	// OtherLabel describes a non-GPT label for messages ("dos").
	OtherLabel string
}

// Options are the run's settings.
type Options struct {
	// Compat is the systemd-repart version whose behaviour the plan
	// mirrors (--compat=); the zero Version means compat.Default.
	Compat compat.Version
	Empty  EmptyMode
	// Seed derives disk, partition and file system UUIDs.
	Seed uuid.UUID
	// Random returns a random UUID; used only when a derived UUID collides
	// with one already on the disk.
	Random func() uuid.UUID
	// Formats is what the system can make (mkfs programs found, the swap
	// page size), probed by the caller: a plan that needs more is refused
	// here, so a dry run refuses what the real run would, before any write.
	Formats fstype.Capabilities
	// Encryption is what the system can do for Encrypt= (cryptsetup,
	// systemd-cryptenroll, a TPM2) and the run's key and TPM2 settings;
	// a plan that needs more is refused like a missing mkfs.
	Encryption encryption.Capabilities
	// Selection is --include-partitions=, --exclude-partitions= and the
	// --defer-partitions* flags.
	Selection Selection
	// FactoryReset erases the partitions whose definition says
	// FactoryReset=yes and creates them anew (see FactoryReset). It is
	// ignored when the table is created from scratch, as in 252.
	FactoryReset bool
	// Discard is what is discarded, and for how long (DiscardRange).
	Discard DiscardPolicy
}

// Activity is what happens to a partition, in systemd-repart's words.
type Activity string

const (
	Create    Activity = "create"
	Resize    Activity = "resize"
	Unchanged Activity = "unchanged"
)

// Partition is one row of the plan: a partition the disk will have.
type Partition struct {
	// Definition is nil for a foreign partition (one no definition claims).
	Definition *repartd.Definition
	File       string // definition basename, "-" when foreign
	Index      int    // GPT slot, 1-based
	Type       uuid.UUID
	Label      string
	UUID       uuid.UUID
	Offset     uint64
	OldSize    uint64 // 0 for a new partition
	NewSize    uint64
	OldPadding uint64
	NewPadding uint64
	Activity   Activity
	// Format and FileSystemUUID are set for new partitions with Format=.
	Format         string
	FileSystemUUID uuid.UUID
	// Encrypt and LUKSUUID are set for new partitions with Encrypt=.
	Encrypt  encryption.Mode
	LUKSUUID uuid.UUID
	// Deferred: the row shows what the run would do without
	// --defer-partitions= (as 262's table does), and nothing is written.
	Deferred bool
}

// Dropped is a definition given up because it did not fit and its
// Priority= allowed dropping it.
type Dropped struct {
	File     string
	Priority int32
}

// Plan is the outcome of planning.
type Plan struct {
	SectorSize  int
	DiskSize    uint64
	FromScratch bool
	Old         *gpt.Table // nil when starting from scratch
	New         *gpt.Table // the table after every step
	Partitions  []Partition
	Dropped     []Dropped
	Notices     []string
	Steps       []Step
}

// Changed reports whether applying the plan writes anything.
func (p *Plan) Changed() bool { return len(p.Steps) > 0 }

// LabelError is a refusal because the disk has no partition table, or
// one of the wrong kind, for the --empty= mode (the cli gives it 252's
// exit code).
type LabelError struct{ Msg string }

func (e *LabelError) Error() string { return e.Msg }

// ErrNoSpace is returned (wrapped) when the definitions cannot fit.
var ErrNoSpace = errors.New("can't fit requested partitions into available free space")

// Make plans what to do. defs must be sorted by file name (repartd.Load does).
func Make(defs []repartd.Definition, snap Snapshot, opts Options) (*Plan, error) {
	if snap.SectorSize <= 0 || snap.SectorSize%512 != 0 {
		return nil, fmt.Errorf("invalid sector size %d", snap.SectorSize)
	}
	fromScratch, err := decideScratch(snap, opts.Empty)
	if err != nil {
		return nil, err
	}
	p := &Plan{SectorSize: snap.SectorSize, DiskSize: snap.Size, FromScratch: fromScratch}
	defs = opts.Selection.selected(defs)

	var table *gpt.Table
	if fromScratch {
		table = gpt.New(int64(snap.Size), snap.SectorSize, DiskGUID(opts.Seed))
		p.Steps = append(p.Steps, CreateTable{DiskGUID: table.DiskGUID})
	} else {
		p.Old = snap.Table
		table = snap.Table.Clone()
		if err := checkFits(snap); err != nil {
			return nil, err
		}
		if table.DiskGUID == uuid.Nil {
			// 252 refuses such a table too ("Failed to set GPT disk label").
			return nil, errors.New("the GPT's disk GUID is all zeros, refusing; give the disk a GUID first (sgdisk --disk-guid=R)")
		}
		// Without definitions there is nothing to do, like 252 ("No
		// changes."), also under --empty=allow: no relocation, no repair.
		// The sizes reported still see the whole disk, as 252's do.
		if table.Grown(int64(snap.Size)) {
			before := *table
			table.Relocate(int64(snap.Size))
			if len(defs) > 0 {
				p.Steps = append(p.Steps, RelocateBackup{
					OldBackupLBA: before.BackupLBA, NewBackupLBA: table.BackupLBA,
					OldLastUsableLBA: before.LastUsableLBA, NewLastUsableLBA: table.LastUsableLBA,
					Table: table.Clone(),
				})
			}
		}
		if len(defs) > 0 {
			// A damaged copy is rewritten from the good one; this is also how
			// a run interrupted while writing the table converges.
			for _, damage := range []struct{ what, why string }{
				{"primary GPT", table.PrimaryInvalid},
				{"backup GPT", table.BackupInvalid},
				{"protective MBR", table.ProtectiveMBRInvalid},
			} {
				if damage.why != "" {
					p.Steps = append(p.Steps, RepairTable{Reason: fmt.Sprintf("the %s is damaged (%s); it is rewritten", damage.what, damage.why)})
				}
			}
		}
		if opts.FactoryReset && len(defs) > 0 {
			reset, err := planFactoryReset(defs, snap, table, p.Steps, opts)
			if err != nil || reset != nil {
				return reset, err
			}
		}
	}

	l := newLayout(defs, table, snap.SectorSize, opts.Compat)
	l.markDeferred(opts.Selection)
	pairs, err := l.mergeSupplements(defs)
	if err != nil {
		return nil, err
	}
	for {
		ok, largest := l.allocate()
		if ok && l.mergedTargetsFit(pairs) {
			break
		}
		if msg := unmergeFirst(pairs); msg != "" {
			p.Notices = append(p.Notices, msg)
			continue
		}
		affected := l.dropHighestPriority()
		if affected == nil {
			return nil, fmt.Errorf("%w (largest free area %s)", ErrNoSpace, FormatBytes(largest))
		}
		for _, m := range affected {
			if m.dropped {
				p.Dropped = append(p.Dropped, Dropped{File: m.def.File, Priority: m.def.Priority})
				p.Notices = append(p.Notices, fmt.Sprintf("Can't fit partition %s of priority %d, dropping it.", m.def.Path, m.def.Priority))
			} else {
				p.Notices = append(p.Notices, fmt.Sprintf("Can't grow existing partition %d, keeping its size.", m.index))
			}
		}
	}
	l.grow()
	placed := l.place()
	if err := checkSlots(placed, table); err != nil {
		return nil, err
	}
	if err := l.checkCreatable(); err != nil {
		return nil, err
	}

	random := opts.Random
	if random == nil {
		random = uuid.New
	}
	uuids, labels, notices := identities(l.members, opts.Seed, random)
	if err := checkExplicitUUIDs(l.members, uuids); err != nil {
		return nil, err
	}
	p.Notices = append(p.Notices, notices...)
	p.Partitions, p.Steps = l.result(p.Steps, uuids, labels, opts.Encryption.Settings)
	p.Steps = discardSteps(p.Steps, p.Partitions, snap.Size, opts.Discard)
	if d := opts.Discard; d.On && d.Limits != nil && d.Limits.MaxBytes == 0 && (fromScratch || wipesRanges(p.Steps)) {
		p.Notices = append(p.Notices, "The disk cannot discard (its queue's discard_max_bytes is 0): nothing is discarded.")
	}
	writeRelocationFirst(p.Steps)

	if p.Changed() {
		if changesPartitions(p.Steps) {
			p.Steps = append(p.Steps, entryUpdates(l.members, uuids, labels)...)
		}
		for _, s := range p.Steps {
			if e, ok := s.(tableEdit); ok {
				e.edit(table)
			}
		}
		p.Steps = append(p.Steps, kernelSteps(p.Partitions)...)
	}
	p.New = table
	if err := checkPreserved(p.Old, p.New); err != nil {
		return nil, err
	}
	if err := checkFormats(p.Steps, opts.Compat, opts.Formats, opts.Encryption); err != nil {
		return nil, err
	}
	return p, nil
}
