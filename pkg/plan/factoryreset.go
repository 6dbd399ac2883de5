package plan

import (
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/gpt"
	"github.com/sprout-initrd/sprout/pkg/repartd"
)

// FactoryReset is the only step that removes partitions: those matched to
// a definition with FactoryReset=yes (repart.d(5); 252 does the same on
// --factory-reset=yes or, in the initrd, systemd.factory_reset=1 or the
// FactoryReset EFI variable).
//
// Table, the old table without them, is written first (backup copy, then
// primary copy, each synced), before a byte of their ranges is touched.
// The rest of the plan is then an ordinary run from that table: wipe and
// format the new ranges while no entry points at them, then add the
// entries. So a crash at any write leaves either the old table with the
// partitions intact, or a table without them that the next run completes
// like a first boot; never an entry pointing at a half-erased partition.
type FactoryReset struct {
	Erase []ErasedPartition
	Table *gpt.Table
}

// ErasedPartition is an existing partition a factory reset removes.
type ErasedPartition struct {
	Index        int
	File         string // the definition that has FactoryReset=yes
	Label        string
	UUID         uuid.UUID
	Offset, Size uint64
}

func (s FactoryReset) Describe() string {
	parts := make([]string, len(s.Erase))
	for i, e := range s.Erase {
		parts[i] = fmt.Sprintf("partition %d %q (%s, UUID %s, %s at offset %d)", e.Index, e.Label, e.File, e.UUID, FormatBytes(e.Size), e.Offset)
	}
	return "factory reset: ERASE " + strings.Join(parts, ", ") +
		"; the table without them is written now (backup copy, then primary copy, each synced), and they are created anew, empty, below"
}

// ResetTargets returns the existing partitions a factory reset would
// erase: entries matched to a definition with FactoryReset=yes, matched
// as in every run (by type, in entry order, to the first unmatched
// definition of that type in file-name order). It is what
// --can-factory-reset asks.
func ResetTargets(defs []repartd.Definition, t *gpt.Table, sectorSize int) []ErasedPartition {
	if t == nil {
		return nil
	}
	// Matching needs no sizes, so no systemd version either.
	l := newLayout(defs, t, sectorSize, sectorSize, compat.Default)
	var out []ErasedPartition
	for _, m := range l.members {
		if m.exists && !m.foreign() && m.def.FactoryReset {
			out = append(out, ErasedPartition{
				Index: m.entry.Index, File: m.def.File, Label: m.entry.Name, UUID: m.entry.UUID,
				Offset: m.offset, Size: m.currentSize,
			})
		}
	}
	sortErased(out)
	return out
}

func sortErased(es []ErasedPartition) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j].Index < es[j-1].Index; j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

// planFactoryReset plans a run with a factory reset. table is the old
// table as the run would write it (backup already moved to the end of a
// grown disk); before holds the steps planned so far (relocation and
// repair notes, which the reset's table write carries out). It returns
// nil when no partition is to be erased: the run is then an ordinary one.
func planFactoryReset(defs []repartd.Definition, snap Snapshot, table *gpt.Table, before []Step, opts Options) (*Plan, error) {
	erase := ResetTargets(defs, table, snap.SectorSize)
	if len(erase) == 0 {
		return nil, nil
	}
	reset := withoutEntries(table, erase)
	// The table as the next read will see it: written whole, so nothing
	// is damaged any more.
	reset.RecoveredFromBackup = false
	reset.PrimaryInvalid, reset.BackupInvalid, reset.ProtectiveMBRInvalid = "", "", ""

	after := snap
	after.Label, after.Table = LabelGPT, reset
	opts.FactoryReset = false
	p, err := Make(defs, after, opts)
	if err != nil {
		return nil, err
	}
	// Relocation and repair are done by the reset's table write; keep
	// them as notes only.
	var steps []Step
	for _, s := range before {
		if r, ok := s.(RelocateBackup); ok {
			r.Table = nil
			s = r
		}
		steps = append(steps, s)
	}
	steps = append(steps, FactoryReset{Erase: erase, Table: reset.Clone()})
	p.Steps = append(steps, p.Steps...)
	p.Old = snap.Table
	p.Notices = append([]string{fmt.Sprintf("Factory reset: %d partition(s) will be erased and created anew.", len(erase))}, p.Notices...)
	if err := checkPreserved(withoutEntries(snap.Table, erase), p.New); err != nil {
		return nil, err
	}
	return p, nil
}

func withoutEntries(t *gpt.Table, erase []ErasedPartition) *gpt.Table {
	out := t.Clone()
	out.Entries = out.Entries[:0]
	for _, e := range t.Entries {
		gone := false
		for _, x := range erase {
			gone = gone || x.Index == e.Index
		}
		if !gone {
			out.Entries = append(out.Entries, e)
		}
	}
	return out
}

// CanFactoryReset answers --can-factory-reset: whether the disk has a
// partition a factory reset would erase. A disk the run would create a
// new table on has none; a disk --empty= refuses gives that refusal.
func CanFactoryReset(defs []repartd.Definition, snap Snapshot, opts Options) (bool, error) {
	fromScratch, err := decideScratch(snap, opts.Empty)
	if err != nil || fromScratch {
		return false, err
	}
	return len(ResetTargets(defs, snap.Table, snap.SectorSize)) > 0, nil
}
