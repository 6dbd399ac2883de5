package plan

import (
	"sort"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/encryption"
	"github.com/sprout-initrd/sprout/pkg/fstype"
	"github.com/sprout-initrd/sprout/pkg/gpt"
	"github.com/sprout-initrd/sprout/pkg/repartd"
)

// This file reproduces systemd-repart 252's size allocation: which new
// partition goes into which free area, how much each partition (new or
// existing) gets, and where it is placed. The behaviour, not the code, is
// taken from systemd; docs/algorithm.md walks through it with numbers.

// member is one entry of the partition list: a definition (matched to an
// existing partition or not) or a foreign partition nobody defined.
type member struct {
	def     *repartd.Definition // nil for a foreign partition
	typ     uuid.UUID
	exists  bool
	dropped bool
	// deferred: planned (space and entry number reserved) but not
	// written (--defer-partitions= and friends).
	deferred bool

	// Existing partitions only.
	entry          gpt.Entry
	offset         uint64 // bytes
	currentSize    uint64 // bytes
	currentPadding uint64 // bytes of free space after it, grain-trimmed
	paddingArea    *freeArea

	// Results of allocation and growth.
	area       *freeArea // the free area a new partition was placed into
	newSize    uint64    // infinite until decided
	newPadding uint64    // infinite until decided
	index      int       // GPT slot, 1-based
}

func (m *member) foreign() bool { return m.def == nil }

// weights of a foreign partition are the defaults: it competes for the
// free space after it like any partition, but its size never changes.
func (m *member) weight() uint64 {
	if m.def == nil {
		return 1000
	}
	return uint64(m.def.Weight)
}

func (m *member) paddingWeight() uint64 {
	if m.def == nil {
		return 0
	}
	return uint64(m.def.PaddingWeight)
}

func (m *member) priority() int32 {
	if m.def == nil {
		return 0
	}
	return m.def.Priority
}

// freeArea is a run of unallocated, grain-aligned space: either after an
// existing partition (after != nil) or before the first partition.
type freeArea struct {
	size      uint64
	after     *member
	allocated uint64
}

// layout is the working state of one planning run.
type layout struct {
	compat     compat.Version // the systemd-repart whose sizes are mirrored
	sectorSize uint64
	grain      uint64
	start, end uint64 // usable area in bytes, grain-aligned
	members    []*member
	areas      []*freeArea
}

// fsMinimumSize is the smallest partition the mirrored systemd-repart's
// planner gives a file system (its declaration's PlanMinimum); for any
// other format one grain is assumed.
func (l *layout) fsMinimumSize(format string) (uint64, bool) {
	f, ok := fstype.Lookup(format)
	min := f.PlanMinimum.At(l.compat)
	return min, ok && min > 0
}

// veritySigSize is the size of a Verity=signature partition: it holds a
// JSON object of at most 16 KiB, and repart gives it exactly that.
const veritySigSize = 16 << 10

func (l *layout) minSize(m *member) uint64 {
	if m.foreign() {
		return m.currentSize
	}
	if m.def.Verity() == "signature" {
		return max(veritySigSize, m.currentSize)
	}
	sz := uint64(hardMinSize)
	if m.exists {
		sz = m.currentSize
	} else if m.def.Format != "" {
		need := l.grain
		if fs, ok := l.fsMinimumSize(m.def.Format); ok {
			need = roundUp(fs, l.grain)
		}
		if m.def.Encrypt != encryption.Off {
			// systemd-repart adds the LUKS2 header to the file
			// system's minimum.
			need += roundUp(encryption.MinimumOverhead.At(l.compat), l.grain)
		}
		sz = max(sz, need)
	}
	wanted := m.def.SizeMin
	if wanted == repartd.Unset {
		wanted = defaultMinSize
	}
	return max(roundUp(wanted, l.grain), sz)
}

func (l *layout) maxSize(m *member) uint64 {
	if m.foreign() {
		return m.currentSize
	}
	if m.def.Verity() == "signature" {
		return max(veritySigSize, m.currentSize)
	}
	if m.def.SizeMax == repartd.Unset {
		return infinite
	}
	sm := roundDown(m.def.SizeMax, l.grain)
	if m.exists {
		sm = max(sm, m.currentSize)
	}
	return max(l.minSize(m), sm)
}

func minPadding(m *member) uint64 {
	if m.def == nil || m.def.PaddingMin == repartd.Unset {
		return 0
	}
	return m.def.PaddingMin
}

func maxPadding(m *member) uint64 {
	if m.def == nil {
		return infinite
	}
	return m.def.PaddingMax // repartd.Unset == infinite
}

// minSizeWithPadding is the space a partition needs at least. For an
// existing partition it keeps the end grain-aligned, not the size.
func (l *layout) minSizeWithPadding(m *member) uint64 {
	sz := addSat(l.minSize(m), minPadding(m))
	if m.exists {
		return lessBy(roundUp(addSat(m.offset, sz), l.grain), m.offset)
	}
	return roundUp(sz, l.grain)
}

func (a *freeArea) available() uint64 { return a.size - a.allocated }

func (l *layout) currentEnd(a *freeArea) uint64 {
	if a.after == nil {
		return a.available()
	}
	return roundUp(a.after.offset+a.after.currentSize, l.grain) + a.available()
}

func (l *layout) minEnd(a *freeArea) uint64 {
	if a.after == nil {
		return 0
	}
	return roundUp(addSat(a.after.offset, l.minSizeWithPadding(a.after)), l.grain)
}

func (l *layout) availableForNew(a *freeArea) uint64 {
	return lessBy(l.currentEnd(a), l.minEnd(a))
}

// allocate assigns every new, not dropped partition to a free area. Areas
// are tried smallest first (by what is left for new partitions), so a
// partition lands in the tightest hole it fits in — not necessarily after
// the last partition. Example: with a 135 MiB gap after the ESP and 700
// MiB after root, a 100 MiB root-b goes into the gap. The sort is stable,
// and it is applied to the order left by the previous attempt, as 252's
// in-place sort is. It returns the size of the largest area for the
// error message.
func (l *layout) allocate() (bool, uint64) {
	for _, a := range l.areas {
		a.allocated = 0
	}
	for _, m := range l.members {
		m.area = nil
	}
	sort.SliceStable(l.areas, func(i, j int) bool {
		return l.availableForNew(l.areas[i]) < l.availableForNew(l.areas[j])
	})
	var largest uint64
	if n := len(l.areas); n > 0 {
		largest = l.availableForNew(l.areas[n-1])
	}
	for _, a := range l.areas {
		if l.currentEnd(a) < l.minEnd(a) {
			return false, largest
		}
	}
	for _, m := range l.members {
		if m.dropped || m.exists {
			continue
		}
		need := l.minSizeWithPadding(m)
		var fit *freeArea
		for _, a := range l.areas {
			if l.availableForNew(a) >= need {
				fit = a
				break
			}
		}
		if fit == nil {
			return false, largest
		}
		m.area = fit
		fit.allocated += need
	}
	return true, largest
}

// dropHighestPriority gives up on every partition of the highest
// Priority= value (only values > 0 are droppable): new ones are dropped,
// existing ones are frozen at their current size by turning them foreign.
// It reports the members affected, or nil when nothing can be dropped.
func (l *layout) dropHighestPriority() []*member {
	var prio int32
	for _, m := range l.members {
		if !m.dropped && m.priority() > prio {
			prio = m.priority()
		}
	}
	if prio <= 0 {
		return nil
	}
	var affected []*member
	for _, m := range l.members {
		if m.dropped || m.foreign() || m.priority() < prio {
			continue
		}
		affected = append(affected, m)
		if m.exists {
			m.def = nil
		} else {
			m.dropped = true
		}
	}
	return affected
}

// growth phases, applied per free area in this order; each of the middle
// two repeats until it settles.
type phase int

const (
	phaseForeign     phase = iota // foreign partitions keep their size
	phaseOvercharge               // partitions whose minimum exceeds their share get their minimum
	phaseUndercharge              // partitions whose maximum is below their share get their maximum
	phaseDistribute               // everyone else gets their share, rounded down to the grain
)

// budget is what is left of a free area to distribute, and the weights
// still competing for it.
type budget struct {
	span      uint64
	weightSum uint64
}

func (l *layout) charge(b *budget, amount, weight uint64) {
	b.span = lessBy(b.span, roundUp(amount, l.grain))
	b.weightSum -= weight
}

func (l *layout) inArea(m *member, a *freeArea) bool {
	return m.area == a || m.paddingArea == a
}

// decide fixes one size (a partition's or its padding's) if the phase
// applies to it, charging it to the budget. It reports whether the shares
// of the others changed so that the phase must run again.
func (l *layout) decide(v *uint64, ph phase, b *budget, weight, lo, hi uint64) (again bool) {
	if *v != infinite {
		return false
	}
	share := scaleByWeight(b.span, weight, b.weightSum)
	switch {
	case ph == phaseOvercharge && lo > share:
		*v, again = lo, true
	case ph == phaseUndercharge && hi < share:
		*v, again = hi, true
	case ph == phaseDistribute:
		*v = min(max(roundDown(share, l.grain), lo), hi)
	default:
		return false
	}
	l.charge(b, *v, weight)
	return again
}

// growPhase runs one pass of a phase; it reports whether it assigned a
// size (the caller then runs the phase again, since shares changed).
func (l *layout) growPhase(a *freeArea, ph phase, b *budget) bool {
	again := false
	for _, m := range l.members {
		if !l.inArea(m, a) {
			continue
		}
		// A foreign partition's size is fixed in the first phase; its
		// padding is split like anyone's.
		if ph == phaseForeign && m.foreign() && m.newSize == infinite {
			m.newSize = m.currentSize
			l.charge(b, m.newSize, m.weight())
		}
		again = l.decide(&m.newSize, ph, b, m.weight(), l.minSize(m), l.maxSize(m)) || again
		again = l.decide(&m.newPadding, ph, b, m.paddingWeight(), minPadding(m), maxPadding(m)) || again
	}
	return again
}

// growArea splits one free area between the partition before it and the
// new partitions placed into it. The span includes the existing
// partition's own size: an existing root (weight 1000) followed by a new
// home (weight 1000) in 300 MiB + 690 MiB free ends at about half of
// 990 MiB each, not "root keeps 300 MiB, home takes the rest".
func (l *layout) growArea(a *freeArea) {
	b := budget{span: a.size}
	for _, m := range l.members {
		if l.inArea(m, a) {
			b.weightSum += m.weight() + m.paddingWeight()
		}
	}
	if a.after != nil {
		b.span += roundUp(a.after.offset+a.after.currentSize, l.grain) - a.after.offset
	}
	for ph := phaseForeign; ph <= phaseDistribute; {
		if !l.growPhase(a, ph, &b) {
			ph++
		}
	}
	// Rounding leftovers go to the new partitions of this area in list
	// order, whatever their weight, up to their maximum.
	for _, m := range l.members {
		if b.span == 0 {
			break
		}
		if m.area != a || m.foreign() {
			continue
		}
		grown := min(max(roundDown(m.newSize+b.span, l.grain), m.newSize), l.maxSize(m))
		b.span = lessBy(b.span, roundUp(grown-m.newSize, l.grain))
		m.newSize = grown
	}
	// What nobody could take stays free after the existing partition.
	if b.span > 0 && a.after != nil {
		a.after.newPadding += b.span
	}
}

func (l *layout) grow() {
	for _, m := range l.members {
		m.newSize, m.newPadding = infinite, infinite
	}
	for _, a := range l.areas {
		l.growArea(a)
	}
	for _, m := range l.members {
		if m.dropped || !m.exists || m.paddingArea != nil {
			continue
		}
		m.newSize, m.newPadding = m.currentSize, m.currentPadding
	}
}

// place assigns offsets and slot numbers to new partitions, area by area
// in the sorted order. Like 252, new partitions take slots after the
// highest used one, in that order (holes in the entry array stay empty).
func (l *layout) place() []*member {
	next := 1
	for _, m := range l.members {
		if m.exists && m.index >= next {
			next = m.index + 1
		}
	}
	var placed []*member
	for _, a := range l.areas {
		start := l.start
		if a.after != nil {
			start = a.after.offset + a.after.newSize + a.after.newPadding
		}
		start = roundUp(start, l.grain)
		for _, m := range l.members {
			if m.area != a {
				continue
			}
			m.offset = start
			m.index = next
			next++
			start += m.newSize + m.newPadding
			placed = append(placed, m)
		}
	}
	return placed
}
