package plan

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/gpt"
	"github.com/sprout-initrd/sprout/pkg/gpt/gpttest"
	"github.com/sprout-initrd/sprout/pkg/parttype"
	"github.com/sprout-initrd/sprout/pkg/repartd"
)

// FuzzPlan plans random definitions against random valid disks: blank
// ones under --empty=allow/force, and GPTs with random partitions, slots,
// gaps and sector sizes, possibly copied onto a bigger disk. The input
// bytes are a stream of choices (see fuzzChoices), so the fuzzer's
// mutations become different disks and definitions.
//
// Properties of every plan: the new table passes gpt.Validate (inside
// [FirstUsable, LastUsable], no overlaps, backup at the disk's end); new
// partitions start and end on max(sector, 4096) bytes; sizes respect
// SizeMinBytes=/SizeMaxBytes= (as 252 reads them: a maximum below the
// minimum yields the minimum); no existing partition moves, shrinks,
// changes type or loses its UUID or name; a new partition's UUID is not
// used by another partition; and the next boots converge: planning again
// on the table as written and read back (gpt.Encode, gpt.Read) succeeds
// and reaches "no changes", on the second run wherever systemd-repart 252
// does (see checkConverges and strictlyIdempotent).
// A refusal must be ErrNoSpace, "no free slot" or an explicit UUID= that
// another partition has; anything else is a bug.
//
// Run longer with: go test ./pkg/plan -run '^$' -fuzz '^FuzzPlan$' -fuzztime 10m
func FuzzPlan(f *testing.F) {
	for _, s := range fuzzPlanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &fuzzChoices{b: data}
		sc, ok := c.scenario()
		if !ok {
			return // not a valid table: out of scope
		}
		checkPlanScenario(t, sc)
	})
}

// fuzzScenario is one decoded input.
type fuzzScenario struct {
	snap Snapshot
	defs []repartd.Definition
	opts Options
}

func (sc fuzzScenario) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "disk %d bytes, %d-byte sectors, label %d, --empty=%s\n", sc.snap.Size, sc.snap.SectorSize, sc.snap.Label, sc.opts.Empty)
	if t := sc.snap.Table; t != nil {
		fmt.Fprintf(&b, "table: usable %d-%d backup %d entries %d\n", t.FirstUsableLBA, t.LastUsableLBA, t.BackupLBA, t.EntryCount)
		for _, e := range t.Entries {
			fmt.Fprintf(&b, "  #%d %s %d-%d uuid %s name %q\n", e.Index, TypeLabel(e.Type), e.FirstLBA, e.LastLBA, e.UUID, e.Name)
		}
	}
	for _, d := range sc.defs {
		fmt.Fprintf(&b, "def %s: %s weight %d pw %d min %d max %d pmin %d pmax %d prio %d format %q\n",
			d.File, TypeLabel(d.Type), d.Weight, d.PaddingWeight, int64(d.SizeMin), int64(d.SizeMax),
			int64(d.PaddingMin), int64(d.PaddingMax), d.Priority, d.Format)
	}
	return b.String()
}

func checkPlanScenario(t *testing.T, sc fuzzScenario) {
	p, err := Make(sc.defs, sc.snap, sc.opts)
	if err != nil {
		var fe *FormatError
		if errors.Is(err, ErrNoSpace) || errors.As(err, &fe) || strings.Contains(err.Error(), "no free slot") ||
			strings.Contains(err.Error(), "is already used by partition") ||
			strings.Contains(err.Error(), "disk GUID is all zeros") {
			return
		}
		t.Fatalf("unexpected refusal: %v\n%s", err, sc)
	}
	size := int64(sc.snap.Size)
	ss := uint64(sc.snap.SectorSize)
	grain := max(ss, 4096)
	if len(sc.defs) == 0 && !p.FromScratch {
		// Nothing to do without definitions: the table stays as it is,
		// however it looks (a grown disk is not relocated either).
		if p.Changed() {
			t.Fatalf("a plan without definitions has steps %v\n%s", p.Steps, sc)
		}
		return
	}
	if err := p.New.Validate(size); err != nil {
		t.Fatalf("the planned table is invalid: %v\n%s", err, sc)
	}

	old := map[int]gpt.Entry{}
	if sc.snap.Label == LabelGPT && !p.FromScratch {
		for _, e := range sc.snap.Table.Entries {
			old[e.Index] = e
		}
	}
	newEntries := map[int]gpt.Entry{}
	for _, e := range p.New.Entries {
		newEntries[e.Index] = e
		if _, existed := old[e.Index]; existed {
			continue
		}
		for _, o := range p.New.Entries {
			if o.Index != e.Index && o.UUID == e.UUID && e.UUID != uuid.Nil {
				t.Fatalf("new partition %d gets UUID %s, which partition %d has too\n%s", e.Index, e.UUID, o.Index, sc)
			}
		}
		if e.FirstLBA*ss%grain != 0 || e.Sectors()*ss%grain != 0 {
			t.Fatalf("new partition %d (LBA %d, %d sectors) is not aligned to %d bytes\n%s", e.Index, e.FirstLBA, e.Sectors(), grain, sc)
		}
	}
	for i, o := range old {
		n, ok := newEntries[i]
		switch {
		case !ok:
			t.Fatalf("existing partition %d disappeared\n%s", i, sc)
		case n.FirstLBA != o.FirstLBA || n.LastLBA < o.LastLBA:
			t.Fatalf("existing partition %d moved or shrank: %d-%d → %d-%d\n%s", i, o.FirstLBA, o.LastLBA, n.FirstLBA, n.LastLBA, sc)
		case n.Type != o.Type || n.Attributes != o.Attributes:
			t.Fatalf("existing partition %d changed type or attributes\n%s", i, sc)
		case o.UUID != uuid.Nil && n.UUID != o.UUID, o.Name != "" && n.Name != o.Name:
			t.Fatalf("existing partition %d lost its UUID or name: %s %q → %s %q\n%s", i, o.UUID, o.Name, n.UUID, n.Name, sc)
		}
	}
	for _, r := range p.Partitions {
		checkSizeLimits(t, r, grain, sc)
	}

	checkConverges(t, p, sc)
}

// checkConverges plans again and again on the table as it lands on disk
// and is read back, as the following boots do. Every run must succeed,
// keep every partition in place and unshrunk, and the runs must reach a
// plan that changes nothing. Where 252 does so, the second run must
// already change nothing (strict idempotency); see strictlyIdempotent for
// where 252 itself keeps changing and sprout follows it.
func checkConverges(t *testing.T, first *Plan, sc fuzzScenario) {
	const maxRuns = 8
	if rematched(first, sc.defs) {
		// Known systemd-repart 252 behaviour, kept for compatibility:
		// the next run matches existing partitions to definitions by
		// type, in slot order, and new partitions get slots in the order
		// of the free areas they land in (smallest area first), and a
		// dropped definition still takes part in matching. So the next
		// run can pair a definition with another definition's partition,
		// and then fail with "can't fit" or change it. Checked with the
		// installed 252: swap definitions 10-a (no size) and 20-b
		// (SizeMaxBytes=48K) on a disk with a 512K gap before a foreign
		// partition: b takes slot 2 in the gap, a slot 3 at the end;
		// the second run pairs 10-a with slot 2 and exits 1.
		return
	}
	opts := sc.opts
	if opts.Empty != EmptyRefuse {
		opts.Empty = EmptyAllow // the disk has a GPT now
	}
	size := int64(sc.snap.Size)
	p := first
	for run := 2; ; run++ {
		got := fuzzWriteAndRead(t, p.New, size, sc)
		next, err := Make(sc.defs, Snapshot{Size: sc.snap.Size, SectorSize: sc.snap.SectorSize, Label: LabelGPT, Table: got}, opts)
		if err != nil {
			t.Fatalf("run %d fails on the result of run %d: %v\n%s\nrun %d:\n%s", run, run-1, err, sc, run-1, describeSteps(p))
		}
		if err := next.New.Validate(size); err != nil {
			t.Fatalf("run %d plans an invalid table: %v\n%s", run, err, sc)
		}
		if !next.Changed() {
			return
		}
		if run == 2 && strictlyIdempotent(first, sc) {
			t.Fatalf("planning again on the result is not a no-op:\n%s\nfirst plan:\n%s\nsecond plan:\n%s", sc, describeSteps(first), describeSteps(next))
		}
		if run == maxRuns {
			t.Fatalf("still changing after %d runs:\n%s\nlast plan:\n%s", run, sc, describeSteps(next))
		}
		p = next
	}
}

// strictlyIdempotent reports whether the second run must change
// nothing. 252 splits the free space after an existing partition between
// that partition and the new ones placed there, and leaves what nobody
// could take (all at their maximum) free after the existing partition.
// So the next run, where the existing partition is alone with that free
// space, grows it again. The same holds for padding, which is re-split on
// every run. Both checked with the installed 252 on a 10G disk: an
// existing 1M home (Weight=1, SizeMinBytes=1G) in front of a new var
// capped at 256M grows to 1G on the first run, to 9.7G on the second and
// stays on the third; an ESP with PaddingWeight=60625 grows from 68M to
// 166M on the second run and stays there on the third.
func strictlyIdempotent(p *Plan, sc fuzzScenario) bool {
	grain := uint64(max(sc.snap.SectorSize, 4096))
	for _, d := range sc.defs {
		if d.PaddingWeight != 0 || d.PaddingMin != repartd.Unset || d.PaddingMax != repartd.Unset {
			return false
		}
	}
	for _, r := range p.Partitions {
		d := r.Definition
		if d == nil || r.NewPadding == 0 || d.Weight == 0 {
			continue
		}
		if d.SizeMax == repartd.Unset || r.NewSize < roundDown(d.SizeMax, grain) {
			return false // free space right after a partition that wants more
		}
	}
	return true
}

// checkSizeLimits: a partition of a definition is at least SizeMinBytes=
// (and the file system minimum) and at most SizeMaxBytes=, unless the
// maximum is below the minimum (then the minimum wins, as in 252) or an
// existing partition was already larger (or could not grow at all).
func checkSizeLimits(t *testing.T, r Partition, grain uint64, sc fuzzScenario) {
	d := r.Definition
	if d == nil {
		return
	}
	wantMin := d.SizeMin
	if wantMin == repartd.Unset {
		wantMin = defaultMinSize
	}
	var floor uint64
	if r.Activity == Create {
		fsMin := uint64(hardMinSize)
		if d.Format != "" {
			fsMin = grain
			if n, ok := (&layout{compat: sc.opts.Compat}).fsMinimumSize(d.Format); ok {
				fsMin = n
			}
		}
		floor = roundUp(max(wantMin, fsMin), grain)
	} else {
		// An existing partition never shrinks. One that is not grown may
		// stay below its minimum: with no free space right after it
		// there is nothing to grow into, and 252 leaves it so too.
		floor = r.OldSize
		if r.Activity == Resize {
			floor = max(roundUp(wantMin, grain), r.OldSize)
		}
	}
	if r.NewSize < floor {
		t.Fatalf("%s: size %d below its minimum %d\n%s", r.File, r.NewSize, floor, sc)
	}
	if d.SizeMax != repartd.Unset {
		if ceiling := max(roundDown(d.SizeMax, grain), floor); r.NewSize > ceiling {
			t.Fatalf("%s: size %d above its maximum %d\n%s", r.File, r.NewSize, ceiling, sc)
		}
	}
	if r.Activity == Create && d.PaddingMin != repartd.Unset && r.NewPadding < d.PaddingMin {
		t.Fatalf("%s: padding %d below PaddingMinBytes=%d\n%s", r.File, r.NewPadding, d.PaddingMin, sc)
	}
}

// rematched reports whether the next run would pair the definitions
// with other partitions than this plan did: existing partitions are
// matched, in slot order, to the first unmatched definition of their
// type in file order.
func rematched(p *Plan, defs []repartd.Definition) bool {
	had := map[string]int{} // definition file → slot in this plan
	for _, r := range p.Partitions {
		if r.Definition != nil {
			had[r.Definition.File] = r.Index
		}
	}
	taken := make([]bool, len(defs))
	for _, e := range p.New.Entries { // sorted by slot
		for i, d := range defs {
			if !taken[i] && d.Type == e.Type {
				taken[i] = true
				if had[d.File] != e.Index {
					return true
				}
				break
			}
		}
	}
	return false
}

func describeSteps(p *Plan) string {
	var b strings.Builder
	for _, r := range p.Partitions {
		fmt.Fprintf(&b, "  row %s #%d %s offset %d size %d→%d padding %d→%d\n", r.File, r.Index, r.Activity, r.Offset, r.OldSize, r.NewSize, r.OldPadding, r.NewPadding)
	}
	for _, s := range p.Steps {
		fmt.Fprintf(&b, "  step: %s\n", s.Describe())
	}
	for _, n := range p.Notices {
		fmt.Fprintf(&b, "  notice: %s\n", n)
	}
	return b.String()
}

// fuzzWriteAndRead stores t on a sparse in-memory disk the way apply
// does and reads it back the way the next boot does.
func fuzzWriteAndRead(t *testing.T, tab *gpt.Table, size int64, sc fuzzScenario) *gpt.Table {
	writes, err := tab.Encode(size)
	if err != nil {
		t.Fatalf("encoding the planned table: %v\n%s", err, sc)
	}
	d := &sparseDisk{size: size, pages: map[int64][]byte{}}
	for _, w := range writes {
		d.WriteAt(w.Data, w.Offset)
	}
	got, err := gpt.Read(d, size, tab.SectorSize)
	if err != nil {
		t.Fatalf("reading back the planned table: %v\n%s", err, sc)
	}
	return got
}

// sparseDisk is an in-memory disk of 4 KiB pages; pages never written
// read as zeros.
type sparseDisk struct {
	size  int64
	pages map[int64][]byte
}

const pageSize = 4096

func (d *sparseDisk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > d.size {
		return 0, io.EOF
	}
	for n := 0; n < len(p); {
		pos := off + int64(n)
		pg, in := pos/pageSize, pos%pageSize
		k := min(len(p)-n, int(pageSize-in))
		if page, ok := d.pages[pg]; ok {
			copy(p[n:n+k], page[in:])
		} else {
			clear(p[n : n+k])
		}
		n += k
	}
	return len(p), nil
}

func (d *sparseDisk) WriteAt(p []byte, off int64) (int, error) {
	for n := 0; n < len(p); {
		pos := off + int64(n)
		pg, in := pos/pageSize, pos%pageSize
		page, ok := d.pages[pg]
		if !ok {
			page = make([]byte, pageSize)
			d.pages[pg] = page
		}
		n += copy(page[in:], p[n:])
	}
	return len(p), nil
}

// fuzzChoices turns the fuzzer's bytes into choices; once the bytes run
// out every choice is 0, which always means the plain option.
type fuzzChoices struct{ b []byte }

func (c *fuzzChoices) byte() byte {
	if len(c.b) == 0 {
		return 0
	}
	v := c.b[0]
	c.b = c.b[1:]
	return v
}

// n returns a number in [0, k).
func (c *fuzzChoices) n(k int) int { return int(c.byte()) % k }

// bits returns a number of up to the given number of bits, with a
// random bit length, so small and huge values are both common.
func (c *fuzzChoices) bits(maxBits int) uint64 {
	var buf [8]byte
	for i := range buf {
		buf[i] = c.byte()
	}
	v := binary.LittleEndian.Uint64(buf[:])
	width := c.n(maxBits + 1)
	if width == 64 {
		return v
	}
	return v & (1<<width - 1)
}

var fuzzTypes = []string{"esp", "root", "home", "var", "swap", "srv", "linux-generic", "usr"}

// foreignType is a type no definition uses (Microsoft basic data).
var foreignType = uuid.MustParse("ebd0a0a2-b9e5-4433-87c0-68b6b72699c7")

func (c *fuzzChoices) typ() uuid.UUID {
	i := c.n(len(fuzzTypes) + 1)
	if i == len(fuzzTypes) {
		return foreignType
	}
	g, _ := parttype.Lookup(fuzzTypes[i])
	return g
}

func (c *fuzzChoices) uuid() uuid.UUID {
	var u uuid.UUID
	for i := range u {
		u[i] = c.byte()
	}
	return u
}

func (c *fuzzChoices) scenario() (fuzzScenario, bool) {
	var sc fuzzScenario
	ss := []int{512, 4096, 1024, 2048}[c.n(4)]
	sectorsPerMiB := uint64(mib / ss)
	// A disk of 3 MiB to 8 TiB plus a few odd sectors.
	origSectors := (3+c.bits(23))*sectorsPerMiB + uint64(c.n(4))*uint64(c.byte())
	sectors := origSectors
	if c.n(3) > 0 { // copied onto a bigger disk
		sectors += c.bits(24)*sectorsPerMiB + uint64(c.n(2))*uint64(c.byte())
	}
	sc.snap = Snapshot{Size: sectors * uint64(ss), SectorSize: ss}
	sc.opts = Options{Compat: compat.Oldest, Seed: c.uuid()}
	counter := uint64(0)
	sc.opts.Random = func() uuid.UUID { // deterministic, unlike uuid.New
		counter++
		var u uuid.UUID
		binary.LittleEndian.PutUint64(u[:], counter)
		u[15] = 0xf0
		return u
	}
	switch c.n(8) {
	case 0:
		sc.snap.Label, sc.opts.Empty = LabelNone, EmptyAllow
	case 1:
		sc.snap.Label, sc.opts.Empty = LabelNone, EmptyForce
	default:
		sc.snap.Label, sc.opts.Empty = LabelGPT, EmptyRefuse
		tab, ok := c.table(origSectors, ss)
		if !ok {
			return sc, false
		}
		sc.snap.Table = tab
	}
	sc.defs = c.definitions()
	return sc, true
}

// table makes a valid GPT for a disk of origSectors sectors, the way
// libfdisk lays it out, with random partitions.
func (c *fuzzChoices) table(origSectors uint64, ss int) (*gpt.Table, bool) {
	origSize := int64(origSectors) * int64(ss)
	t := gpt.New(origSize, ss, c.uuid())
	switch c.n(6) {
	case 1: // a one-sector entry array
		t.EntryCount = uint32(ss / 128)
	case 2:
		t.EntryCount = 256
	}
	if t.EntryCount != 128 {
		t.Relocate(origSize)
	}
	sectorsPerMiB := uint64(mib / ss)
	cursor := t.FirstUsableLBA
	slot := 0
	for k := c.n(7); k > 0; k-- {
		switch c.n(4) {
		case 0: // right after the previous one
		case 1:
			cursor += uint64(c.byte()) // an odd gap
		default:
			cursor = (cursor + sectorsPerMiB - 1) / sectorsPerMiB * sectorsPerMiB // MiB-aligned, as tools do
			cursor += uint64(c.n(3)) * c.bits(16) * sectorsPerMiB
		}
		length := 1 + c.bits(12)
		if c.n(2) == 0 {
			length = (1 + c.bits(14)) * sectorsPerMiB
		}
		if cursor+length-1 > t.LastUsableLBA {
			break
		}
		slot += 1 + c.n(2)*c.n(4)
		e := gpt.Entry{Index: slot, Type: c.typ(), FirstLBA: cursor, LastLBA: cursor + length - 1}
		if c.n(4) > 0 {
			e.UUID = c.uuid()
		}
		if c.n(3) > 0 {
			e.Name = []string{"root", "home", "data", "esp", "var-2"}[c.n(5)]
		}
		if c.n(4) == 0 {
			e.Attributes = uint64(c.byte()) << 56
		}
		t.Entries = append(t.Entries, e)
		cursor += length
	}
	if err := t.Validate(origSize); err != nil {
		return nil, false
	}
	return onDisk(t, origSize), true
}

// onDisk stores t on an in-memory disk and reads it back, so the table
// carries what gpt.Read gives the planner (go-diskfs, which writes the
// plan, takes the entry count only from a table it reads). gpttest
// crafts the bytes: go-diskfs creates no table of other than 128 entries.
func onDisk(t *gpt.Table, size int64) *gpt.Table {
	l := gpttest.Layout{
		SectorSize: t.SectorSize, DiskGUID: t.DiskGUID, EntryCount: t.EntryCount,
		FirstUsableLBA: t.FirstUsableLBA, LastUsableLBA: t.LastUsableLBA, BackupLBA: t.BackupLBA,
	}
	for _, e := range t.Entries {
		l.Entries = append(l.Entries, gpttest.Entry(e))
	}
	d := &sparseDisk{size: size, pages: map[int64][]byte{}}
	if err := gpttest.Write(d, l); err != nil {
		panic(err)
	}
	read, err := gpt.Read(d, size, t.SectorSize)
	if err != nil {
		panic(fmt.Sprintf("the fuzzer's table does not read back: %v", err))
	}
	return read
}

func (c *fuzzChoices) definitions() []repartd.Definition {
	var defs []repartd.Definition
	size := func() uint64 {
		if c.n(3) == 0 {
			return repartd.Unset
		}
		return c.bits(44) / 4096 * 4096
	}
	for i := c.n(7); i > 0; i-- {
		d := repartd.Definition{
			File: fmt.Sprintf("%02d-fuzz.conf", len(defs)), Type: c.typ(),
			Weight: repartd.DefaultWeight, SizeMin: size(), SizeMax: size(),
			PaddingMin: repartd.Unset, PaddingMax: repartd.Unset,
			NoAuto: repartd.TriUnset, ReadOnly: repartd.TriUnset, GrowFileSystem: repartd.TriUnset,
		}
		d.Path = "/defs/" + d.File
		if d.SizeMin != repartd.Unset && d.SizeMax != repartd.Unset && d.SizeMin > d.SizeMax {
			d.SizeMin, d.SizeMax = d.SizeMax, d.SizeMin
		}
		switch c.n(4) {
		case 1:
			d.Weight = uint32(c.bits(20) % (repartd.MaxWeight + 1))
		case 2:
			d.Weight = 0
		}
		if c.n(3) == 0 {
			d.PaddingWeight = uint32(c.bits(20) % (repartd.MaxWeight + 1))
			d.PaddingMin, d.PaddingMax = size(), size()
			if d.PaddingMin != repartd.Unset && d.PaddingMax != repartd.Unset && d.PaddingMin > d.PaddingMax {
				d.PaddingMin, d.PaddingMax = d.PaddingMax, d.PaddingMin
			}
		}
		if c.n(3) == 0 {
			d.Priority = int32(c.n(4))
		}
		d.Format = []string{"", "", "ext4", "xfs", "btrfs", "vfat", "swap"}[c.n(7)]
		if c.n(4) == 0 {
			l := []string{"root", "home", "data", ""}[c.n(4)]
			d.Label = &l
		}
		if c.n(5) == 0 {
			u := c.uuid()
			u[0] = byte(len(defs)) // explicit UUIDs are unique (repartd.Load checks)
			u[1] = 0xa5
			d.UUID = &u
		}
		defs = append(defs, d)
	}
	return defs
}

// fuzzPlanSeeds: the empty input is a blank 3 MiB disk with no
// definitions. The committed corpus in testdata/fuzz/FuzzPlan holds inputs
// that decode to blank disks, grown GPTs with partitions (with and without
// dropped definitions) and refusals, at every sector size.
var fuzzPlanSeeds = []string{""}
