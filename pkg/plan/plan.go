// Package plan turns partition definitions and a snapshot of a disk into a
// Plan: the partitions the disk will have and the ordered steps that get it
// there. It is a pure function — no I/O, no clock, no randomness except
// what the caller passes in — so a dry run prints exactly what a real run
// executes, and tests assert on plans without touching a disk.
package plan

import (
	"errors"
	"fmt"
	"github.com/sprout-initrd/sprout/pkg/blockdev"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/fstype"
	"github.com/sprout-initrd/sprout/pkg/gpt"
	"github.com/sprout-initrd/sprout/pkg/luks"
	"github.com/sprout-initrd/sprout/pkg/spec"
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
	Empty EmptyMode
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
	Encryption luks.Capabilities
	// FactoryReset erases the partitions whose definition says
	// FactoryReset=yes and creates them anew (see FactoryReset). It is
	// ignored when the table is created from scratch, as in 252.
	FactoryReset bool
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
	Definition *spec.Definition
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
	Encrypt  spec.Encryption
	LUKSUUID uuid.UUID
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

// Make plans what to do. defs must be sorted by file name (spec.Load does).
func Make(defs []spec.Definition, snap Snapshot, opts Options) (*Plan, error) {
	if snap.SectorSize <= 0 || snap.SectorSize%512 != 0 {
		return nil, fmt.Errorf("invalid sector size %d", snap.SectorSize)
	}
	fromScratch, err := decideScratch(snap, opts.Empty)
	if err != nil {
		return nil, err
	}
	p := &Plan{SectorSize: snap.SectorSize, DiskSize: snap.Size, FromScratch: fromScratch}

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

	l := newLayout(defs, table, snap.SectorSize)
	for {
		ok, largest := l.allocate()
		if ok {
			break
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
	if err := checkFormats(p.Steps, opts.Formats, opts.Encryption); err != nil {
		return nil, err
	}
	return p, nil
}

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
func checkFormats(steps []Step, can fstype.Capabilities, crypt luks.Capabilities) error {
	for _, s := range steps {
		switch s := s.(type) {
		case EncryptPartition:
			if err := crypt.Check(s.Mode); err != nil {
				return &FormatError{Index: s.Index, Err: err}
			}
		case FormatPartition:
			if err := can.Check(s.Format, int64(s.FileSystemSize())); err != nil {
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

// newLayout builds the partition list and the free areas: definitions in
// file name order, each existing entry (in entry order) matched to the
// first unmatched definition of its type or else appended as foreign.
func newLayout(defs []spec.Definition, t *gpt.Table, sectorSize int) *layout {
	secsz := uint64(sectorSize)
	l := &layout{sectorSize: secsz, grain: max(secsz, 4096)}
	for i := range defs {
		l.members = append(l.members, &member{def: &defs[i], typ: defs[i].Type})
	}
	for _, e := range t.Entries {
		var m *member
		for _, c := range l.members {
			if !c.foreign() && !c.exists && c.typ == e.Type {
				m = c
				break
			}
		}
		if m == nil {
			m = &member{typ: e.Type}
			l.members = append(l.members, m)
		}
		m.exists = true
		m.entry = e
		m.index = e.Index
		m.offset = e.FirstLBA * secsz
		m.currentSize = e.Sectors() * secsz
	}
	// The free space after each existing partition, in entry order.
	usableEnd := (t.LastUsableLBA + 1) * secsz
	for _, m := range l.members {
		if !m.exists {
			continue
		}
		end := (m.entry.LastLBA + 1) * secsz
		next := usableEnd
		for _, e := range t.Entries {
			if s := e.FirstLBA * secsz; s >= end && s < next {
				next = s
			}
		}
		m.currentPadding = lessBy(roundDown(next, l.grain), roundUp(end, l.grain))
		if m.currentPadding > 0 {
			m.paddingArea = &freeArea{size: m.currentPadding, after: m}
		}
	}
	// Keep the areas in entry order (ties in the size sort keep it).
	for _, e := range t.Entries {
		for _, m := range l.members {
			if m.exists && m.entry.Index == e.Index && m.paddingArea != nil {
				l.areas = append(l.areas, m.paddingArea)
			}
		}
	}
	l.start = roundUp(t.FirstUsableLBA*secsz, l.grain)
	l.end = roundDown(usableEnd, l.grain)
	firstStart := infinite
	for _, e := range t.Entries {
		firstStart = min(firstStart, e.FirstLBA*secsz)
	}
	if firstStart == infinite {
		if l.end > l.start {
			l.areas = append(l.areas, &freeArea{size: l.end - l.start})
		}
	} else if lead := roundDown(firstStart, l.grain); lead > l.start {
		l.areas = append(l.areas, &freeArea{size: lead - l.start})
	}
	return l
}

// result turns the members into plan rows and the partition steps.
func (l *layout) result(steps []Step, uuids []uuid.UUID, labels []string, crypt luks.Settings) ([]Partition, []Step) {
	var rows []Partition
	var wipes, formats, adds, grows []Step
	for i, m := range l.members {
		if m.dropped {
			continue
		}
		row := Partition{
			Definition: m.def, File: "-", Index: m.index, Type: m.typ,
			Label: labels[i], UUID: uuids[i], Offset: m.offset,
			NewSize: m.newSize, NewPadding: m.newPadding, Activity: Unchanged,
		}
		if m.def != nil {
			row.File = m.def.File
		}
		secsz := l.sectorSize
		switch {
		case !m.exists:
			row.Activity = Create
			row.Format = m.def.Format
			wipes = append(wipes, WipeRange{Index: m.index, Offset: m.offset, Size: m.newSize})
			if row.Encrypt = m.def.Encrypt; row.Encrypt != spec.EncryptOff {
				row.LUKSUUID = LUKSUUID(row.UUID)
				formats = append(formats, encryptStep(m, row, crypt))
			}
			if row.Format != "" {
				row.FileSystemUUID = FileSystemUUID(row.UUID)
				formats = append(formats, FormatPartition{
					Index: m.index, Offset: m.offset, Size: m.newSize, Format: row.Format,
					Label: row.Label, UUID: row.FileSystemUUID,
					Encrypted: row.Encrypt != spec.EncryptOff,
				})
			}
			adds = append(adds, AddEntry{Entry: gpt.Entry{
				Index: m.index, Type: m.typ, UUID: row.UUID, Name: row.Label,
				FirstLBA: m.offset / secsz, LastLBA: (m.offset+m.newSize)/secsz - 1,
				Attributes: newAttributes(m.def, m.typ),
			}})
		default:
			row.OldSize, row.OldPadding = m.currentSize, m.currentPadding
			if m.newSize > m.currentSize {
				row.Activity = Resize
				grows = append(grows, GrowEntry{
					Index: m.index, OldSize: m.currentSize, NewSize: m.newSize,
					LastLBA: (m.offset+m.newSize)/secsz - 1,
				})
			}
		}
		rows = append(rows, row)
	}
	// Ranges are wiped and formatted before any entry exists, so a crash
	// leaves either no partition or a complete one.
	steps = append(steps, wipes...)
	steps = append(steps, formats...)
	steps = append(steps, grows...)
	steps = append(steps, adds...)
	return rows, steps
}

// writeRelocationFirst keeps the relocated old table in the
// RelocateBackup step (to be written on its own, first) only when ranges
// of new partitions are wiped before the new table is written: the old
// backup GPT lies in one of them. Otherwise the relocation is written
// with the new table.
func writeRelocationFirst(steps []Step) {
	for _, s := range steps {
		if _, ok := s.(WipeRange); ok {
			return
		}
	}
	for i, s := range steps {
		if r, ok := s.(RelocateBackup); ok {
			r.Table = nil
			steps[i] = r
		}
	}
}

// changesPartitions reports whether a partition is added or grown (not
// only the table relocated or repaired).
func changesPartitions(steps []Step) bool {
	for _, s := range steps {
		switch s.(type) {
		case AddEntry, GrowEntry, CreateTable:
			return true
		}
	}
	return false
}

// entryUpdates gives existing partitions the label or UUID they lack (an
// empty name, an all-zero UUID). Like 252 this alone is not a reason to
// write the table; it rides along when partitions change anyway.
func entryUpdates(members []*member, uuids []uuid.UUID, labels []string) []Step {
	var steps []Step
	for i, m := range members {
		if !m.exists || m.foreign() {
			continue
		}
		if m.entry.UUID != uuids[i] || m.entry.Name != labels[i] {
			steps = append(steps, UpdateEntry{Index: m.index, UUID: uuids[i], Name: labels[i]})
		}
	}
	return steps
}

func kernelSteps(rows []Partition) []Step {
	// The kernel is always brought in line with the written table: after a
	// repair it may lack partitions that are not new.
	var tell TellKernel
	for _, r := range rows {
		switch r.Activity {
		case Create:
			tell.Add = append(tell.Add, r.Index)
		case Resize:
			tell.Resize = append(tell.Resize, r.Index)
		}
	}
	steps := []Step{WriteTable{}, tell}
	var wait WaitForUdev
	for _, r := range rows {
		if r.Activity == Create {
			wait.Partitions = append(wait.Partitions, r.Index)
			wait.Links = append(wait.Links, r.UdevLinks()...)
		}
	}
	if len(wait.Partitions) == 0 {
		// Nothing new, but the table is written all the same (a repair, a
		// resize): udev's watch re-reads it once sprout lets go of the
		// disk, removing and re-adding every partition. Wait for that
		// here, not under the mounts ordered after sprout (measured in
		// the QEMU tier: a repaired primary GPT, then a re-read after
		// "All done.").
		for _, r := range rows {
			wait.Partitions = append(wait.Partitions, r.Index)
			wait.Links = append(wait.Links, "/dev/disk/by-partuuid/"+r.UUID.String())
		}
	}
	if len(wait.Partitions) > 0 {
		steps = append(steps, wait)
	}
	return steps
}

// UdevLinks are the /dev/disk links udev makes for the partition.
func (r Partition) UdevLinks() []string {
	var links []string
	if r.Label != "" {
		links = append(links, "/dev/disk/by-partlabel/"+blockdev.UdevEscape(r.Label))
	}
	return append(links, "/dev/disk/by-partuuid/"+r.UUID.String())
}

// MinimalSize is what --size=auto grows an image to: the minimum size of
// every partition (with its minimum padding; an existing partition counts
// with its current size) plus room for the two GPT copies, rounded up to
// 4096 bytes.
func MinimalSize(defs []spec.Definition, snap Snapshot) uint64 {
	table := snap.Table
	if snap.Label != LabelGPT {
		table = gpt.New(int64(max(snap.Size, 1<<20)), snap.SectorSize, uuid.Nil)
	}
	l := newLayout(defs, table, snap.SectorSize)
	sum := uint64(gptMetadataSize)
	for _, m := range l.members {
		sum = addSat(sum, l.minSizeWithPadding(m))
	}
	return roundUp(sum, 4096)
}
