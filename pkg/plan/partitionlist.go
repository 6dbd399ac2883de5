package plan

// The partition list: definitions matched to the existing table, the
// layout the allocator (layout.go) works on, and from its result back to
// the rows of a plan.

import (
	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/encryption"
	"github.com/sprout-initrd/sprout/pkg/gpt"
	"github.com/sprout-initrd/sprout/pkg/repartd"
)

// newLayout builds the partition list and the free areas: definitions in
// file name order, each existing entry (in entry order) matched to the
// first unmatched definition of its type or else appended as foreign. The
// layout follows systemd-repart version v; fsSectorSize is the sector
// size of the file systems it makes.
func newLayout(defs []repartd.Definition, t *gpt.Table, sectorSize, fsSectorSize int, v compat.Version) *layout {
	secsz := uint64(sectorSize)
	l := &layout{compat: v.OrDefault(), sectorSize: secsz, fsSectorSize: uint64(fsSectorSize), grain: max(secsz, 4096)}
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
func (l *layout) result(steps []Step, uuids []uuid.UUID, labels []string, crypt encryption.Settings) ([]Partition, []Step) {
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
		if f := m.frozen; f != nil && f.Label != nil && m.entry.Name == "" && compat.FrozenListsLabel.In(l.compat) {
			row.ListedLabel = *f.Label
		}
		secsz := l.sectorSize
		switch {
		case !m.exists:
			row.Activity = Create
			row.Format = m.def.Format
			row.Encrypt = m.def.Encrypt
			if row.Encrypt != encryption.Off {
				row.LUKSUUID = LUKSUUID(row.UUID)
			}
			if row.Format != "" {
				row.FileSystemUUID = FileSystemUUID(row.UUID)
			}
			if m.deferred {
				row.Deferred = true
				break
			}
			wipes = append(wipes, WipeRange{Index: m.index, Offset: m.offset, Size: m.newSize})
			if row.Encrypt != encryption.Off {
				formats = append(formats, l.encryptStep(m, row, crypt))
			}
			if row.Format != "" {
				formats = append(formats, FormatPartition{
					Index: m.index, Offset: m.offset, Size: m.newSize, Format: row.Format,
					Label: row.Label, UUID: row.FileSystemUUID,
					Encrypted: row.Encrypt != encryption.Off, SectorSize: l.formatSectorSize(row),
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
				if m.deferred {
					row.Deferred = true
					break
				}
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

// MinimalSize is what --size=auto grows an image to: the minimum size of
// every partition (with its minimum padding; an existing partition counts
// with its current size) plus room for the two GPT copies, rounded up to
// 4096 bytes. v is the systemd-repart whose minimums are mirrored
// (Options.Compat).
func MinimalSize(defs []repartd.Definition, snap Snapshot, v compat.Version) uint64 {
	table := snap.Table
	if snap.Label != LabelGPT {
		table = gpt.New(int64(max(snap.Size, 1<<20)), snap.SectorSize, uuid.Nil)
	}
	l := newLayout(defs, table, snap.SectorSize, snap.FileSystemSectorSize(), v)
	var sum uint64
	for _, m := range l.members {
		sum = addSat(sum, l.minSizeWithPadding(m))
	}
	if !compat.ExactAutoSize.In(v) {
		return roundUp(addSat(sum, gptMetadataSize), 4096)
	}
	// From 262 on: the space before the first usable sector, the
	// partitions, and the backup GPT (entry array and header), exactly.
	secsz := uint64(snap.SectorSize)
	first := table.FirstUsableLBA * secsz
	if snap.Label != LabelGPT {
		first = 1 << 20 // a new table's, on a disk of more than 4 MiB
	}
	backup := roundUp(uint64(table.EntryCount)*128, secsz) + secsz // 128-byte entries, then the header
	return addSat(addSat(first, sum), backup)
}
