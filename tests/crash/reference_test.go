package crash

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// reference is the scenario's disk before the run, the same disk with its
// backup GPT relocated by sfdisk, and the disk after an uninterrupted run:
// what every crash point is compared with.
type reference struct {
	sc       *scenario
	work     string
	base     string // the grown disk before the run (never written)
	defs     string
	oldTable *harness.Table // sfdisk's view before the run
	// relocatedTable is sfdisk's view of the old disk after `sfdisk
	// --relocate gpt-bak-std`: the table sprout writes first.
	relocatedTable *harness.Table
	newTable       *harness.Table // sfdisk's view after the run
	known          knownTables
	oldBackupLBA   uint64
	existing       []existingPart
	newParts       []newPart
	writes         []harness.DiskWrite
	mkfsWrites     int
	// points are the crash points of each mode: the writes of the
	// uninterrupted run (all of them, or mkfs's), in its order.
	points map[mode][]writeKey
	// relocationEnd is the position (0-based) in writes of the last
	// write of the relocated old table, its protective MBR.
	relocationEnd int
	// oldSgdisk, relocatedSgdisk and newSgdisk are the problems sgdisk -v
	// reports about the disk before the run, relocated by sfdisk, and
	// after an uninterrupted run.
	oldSgdisk, relocatedSgdisk, newSgdisk []string
	// tableAreas are where the new table lives: LBA 0 up to the first
	// usable LBA, and the last usable LBA to the end.
	tableAreas []region
	tm         timings
	// tools caches toolsOnCrashed's findings per crash state.
	toolsMu sync.Mutex
	tools   map[string][]string
}

// writeKey names a write independently of the run: the parallel mkfs
// runs and sprout's goroutines interleave their writes differently each
// time, but the n-th write of a program to a given range is the same
// write in every run. A crash point is "before this write", so every
// write of the uninterrupted run is the one cut off in exactly one point.
type writeKey struct {
	Comm, Syscall  string
	Offset, Length int64
	Occurrence     int // 1 for the first such write, 2 for the second …
}

func keyOf(w harness.DiskWrite) writeKey {
	return writeKey{Comm: w.Comm, Syscall: w.Syscall, Offset: w.Offset, Length: w.Length}
}

// matches reports whether w is a write of k's kind (any occurrence).
func (k writeKey) matches(w harness.DiskWrite) bool {
	return w.Comm == k.Comm && w.Syscall == k.Syscall && w.Offset == k.Offset && w.Length == k.Length
}

func (k writeKey) String() string {
	return fmt.Sprintf("%s %s [%d, %d) #%d", k.Comm, k.Syscall, k.Offset, k.Offset+k.Length, k.Occurrence)
}

// existingPart is a partition the disk had before the run, with the hash
// of its bytes then.
type existingPart struct {
	region
	Hash string
	// Erased: the scenario's factory reset erases it (FactoryReset).
	Erased bool
}

type newPart struct {
	region
	Entry  int
	Format string
	Probe  map[string]string // TYPE, UUID, LABEL after the uninterrupted run
}

// existingRegions are the partitions that must keep their bytes, always:
// every old partition except those a factory reset erases.
func (r *reference) existingRegions() []region {
	var out []region
	for _, e := range r.existing {
		if !e.Erased {
			out = append(out, e.region)
		}
	}
	return out
}

// changedExisting lists the kept pre-existing partitions whose bytes differ in img.
func (r *reference) changedExisting(img string) []string {
	return r.changed(img, false)
}

// changedErased lists the partitions a factory reset erases whose bytes
// differ in img.
func (r *reference) changedErased(img string) []string {
	return r.changed(img, true)
}

func (r *reference) changed(img string, erased bool) []string {
	var out []string
	for _, e := range r.existing {
		if e.Erased != erased {
			continue
		}
		h, err := harness.RangeHash(img, e.Off, e.Size)
		if err != nil {
			out = append(out, err.Error())
		} else if h != e.Hash {
			out = append(out, fmt.Sprintf("the bytes of existing partition %s [%d, %d) changed", e.Name, e.Off, e.End()))
		}
	}
	return out
}

// reference prepares the scenario's reference: the old disk's table and
// partitions, then an uninterrupted traced run (twice, to show that the
// number of writes, and so the list of crash points, is stable).
func (s *suite) reference(ctx context.Context, sc *scenario, base, work string) (*reference, error) {
	defs, err := sc.definitionsDir()
	if err != nil {
		return nil, err
	}
	ref := &reference{sc: sc, work: work, base: base, defs: defs}
	ss := sc.SectorSize

	// The old disk.
	m, err := boot(ctx, base, ss)
	if err != nil {
		return nil, err
	}
	ref.oldTable, err = harness.ReadTable(ctx, m.loop.Dev)
	var sg *sgdiskView
	if err == nil {
		sg, err = sgdisk(ctx, m.loop.Dev)
	}
	if err == nil {
		ref.oldSgdisk = sg.Problems
	}
	if perr := m.powerOff(ctx); err == nil {
		err = perr
	}
	if err != nil {
		return nil, err
	}
	primary, err := readDiskGPT(base, ss, 1)
	if err != nil {
		return nil, err
	}
	if !primary.Primary.Intact() {
		return nil, fmt.Errorf("the base image's primary GPT: %s", primary.Primary.Problem)
	}
	ref.oldBackupLBA = binary.LittleEndian.Uint64(primary.Primary.Header[32:])
	if ref.known.Old, err = readDiskGPT(base, ss, ref.oldBackupLBA); err != nil {
		return nil, err
	}
	if !ref.known.Old.Other.Intact() {
		return nil, fmt.Errorf("the base image's backup GPT at LBA %d: %s (want a grown disk)", ref.oldBackupLBA, ref.known.Old.Other.Problem)
	}
	if err := ref.relocateWithSfdisk(ctx); err != nil {
		return nil, err
	}
	for _, p := range ref.oldTable.Partitions {
		r := region{Name: fmt.Sprintf("%d (%q)", p.Entry, p.Name), Off: p.StartBytes(ref.oldTable), Size: p.SizeBytes(ref.oldTable)}
		h, err := harness.RangeHash(base, r.Off, r.Size)
		if err != nil {
			return nil, err
		}
		ref.existing = append(ref.existing, existingPart{region: r, Hash: h, Erased: slices.Contains(sc.FactoryReset, p.Name)})
	}

	// The uninterrupted run.
	img := filepath.Join(work, "reference.img")
	res, err := s.uninterrupted(ctx, ref, img)
	if err != nil {
		return nil, err
	}
	ref.writes = res.Writes
	ref.points = map[mode][]writeKey{}
	seen := map[writeKey]int{}
	for _, w := range ref.writes {
		k := keyOf(w)
		seen[k]++
		k.Occurrence = seen[k]
		ref.points[powerCut] = append(ref.points[powerCut], k)
		if w.PID != res.root {
			ref.mkfsWrites++
			ref.points[mkfsKilled] = append(ref.points[mkfsKilled], k)
		}
	}
	if ref.known.New, err = readDiskGPT(img, ss, ref.oldBackupLBA); err != nil {
		return nil, err
	}
	if !ref.known.New.Primary.Intact() || !ref.known.New.AtEnd.Intact() {
		return nil, fmt.Errorf("after the run: primary GPT %q, backup %q", ref.known.New.Primary.Problem, ref.known.New.AtEnd.Problem)
	}
	if p := ref.changedExisting(img); len(p) > 0 {
		return nil, fmt.Errorf("the uninterrupted run changed existing partitions: %v", p)
	}
	if bad := missing(ref.newSgdisk, ref.relocatedSgdisk); len(bad) > 0 {
		return nil, fmt.Errorf("sgdisk -v reports %q on the old disk relocated by sfdisk, but not on the new disk", bad)
	}
	if err := s.checkRelocationWrites(ctx, ref, res); err != nil {
		return nil, err
	}
	t := ref.newTable
	ref.tableAreas = []region{
		{Name: "the primary GPT area", Off: 0, Size: int64(t.FirstLBA) * ss},
		{Name: "the backup GPT area", Off: int64(t.LastLBA+1) * ss, Size: int64(uint64(res.size)/uint64(ss)-t.LastLBA-1) * ss},
	}

	// Again, on another copy: the crash points must be the same each time.
	again, err := s.uninterrupted(ctx, ref, filepath.Join(work, "reference2.img"))
	if err != nil {
		return nil, fmt.Errorf("second uninterrupted run: %w", err)
	}
	if len(again.Writes) != len(ref.writes) {
		return nil, fmt.Errorf("two uninterrupted runs made %d and %d disk writes: the crash points are not well defined", len(ref.writes), len(again.Writes))
	}
	return ref, nil
}

// relocateWithSfdisk makes the reference's relocated table independently of
// sprout: `sfdisk --relocate gpt-bak-std` on a copy of the old disk
// (attached with the scenario's sector size, which sfdisk takes from the
// device).
func (r *reference) relocateWithSfdisk(ctx context.Context) error {
	img := filepath.Join(r.work, "relocated.img")
	if err := harness.CopySparse(r.base, img); err != nil {
		return err
	}
	defer os.Remove(img)
	loop, err := harness.AttachLoop(ctx, img, r.sc.SectorSize)
	if err != nil {
		return err
	}
	err = harness.Relocate(ctx, loop.Dev)
	var erased []string
	for _, p := range r.oldTable.Partitions {
		if err == nil && slices.Contains(r.sc.FactoryReset, p.Name) {
			// The factory reset's first table: the relocated one without
			// the erased partitions.
			_, err = harness.MustSucceed(ctx, "sfdisk", "-q", "--no-reread", "--no-tell-kernel", "--delete", loop.Dev, fmt.Sprint(p.Entry))
			erased = append(erased, fmt.Sprintf("#%d:", p.Entry))
		}
	}
	if err == nil {
		r.relocatedTable, err = harness.ReadTable(ctx, loop.Dev)
	}
	var sg *sgdiskView
	if err == nil {
		sg, err = sgdisk(ctx, loop.Dev)
	}
	if derr := loop.Detach(ctx); err == nil {
		err = derr
	}
	if err != nil {
		return fmt.Errorf("the old disk relocated by sfdisk: %w", err)
	}
	r.relocatedSgdisk = sg.Problems
	if r.known.Relocated, err = readDiskGPT(img, r.sc.SectorSize, r.oldBackupLBA); err != nil {
		return err
	}
	if rl := r.known.Relocated; !rl.Primary.Intact() || !rl.AtEnd.Intact() {
		return fmt.Errorf("the old disk relocated by sfdisk: primary GPT %q, backup in the last LBA %q", rl.Primary.Problem, rl.AtEnd.Problem)
	}
	// The relocation changes where the table's backup is and how much of
	// the disk is usable, nothing else (and, for a factory reset, the
	// erased entries are gone).
	d := harness.Diff(r.oldTable, r.relocatedTable)
	if len(d) != 1+len(erased) || !strings.HasPrefix(d[0], "lastlba:") {
		return fmt.Errorf("sfdisk --relocate gpt-bak-std (and --delete of %v) changed more than the last usable LBA and those entries: %v", erased, d)
	}
	return nil
}

// checkRelocationWrites checks that the table sprout writes first is the
// relocated old table, byte for byte as sfdisk makes it: the uninterrupted
// run is repeated on a fresh copy and stopped right after its first
// protective MBR write (the last write of a table), and the table copies
// and the MBR on the disk are compared with sfdisk's relocated disk.
func (s *suite) checkRelocationWrites(ctx context.Context, ref *reference, res *uninterruptedRun) error {
	ss := ref.sc.SectorSize
	ref.relocationEnd = -1
	primaryWritten := false
	for i, w := range ref.writes {
		if w.PID != res.root {
			continue
		}
		if w.Offset < 2*ss && w.End() > ss {
			primaryWritten = true
		}
		if primaryWritten && w.Offset < ss {
			ref.relocationEnd = i
			break
		}
	}
	switch {
	case ref.relocationEnd < 0:
		return errors.New("sprout wrote no primary GPT header followed by a protective MBR")
	case ref.relocationEnd == len(ref.writes)-1:
		return fmt.Errorf("sprout's first table write is its last write (%v): it did not write the old table relocated before preparing the new partitions", ref.writes[ref.relocationEnd])
	}
	var erased []region
	for _, e := range ref.existing {
		if e.Erased {
			erased = append(erased, e.region)
		}
	}
	if early := writesInto(ref.writes[:ref.relocationEnd+1], erased); len(early) > 0 {
		return fmt.Errorf("the factory reset writes into a partition it erases before the table without it is written: %v", early)
	}
	img := filepath.Join(ref.work, "relocation.img")
	if err := harness.CopySparse(ref.base, img); err != nil {
		return err
	}
	defer os.Remove(img)
	m, err := boot(ctx, img, ss)
	if err != nil {
		return err
	}
	next := ref.points[powerCut][ref.relocationEnd+1]
	tr, err := harness.TraceWrites(ctx, harness.TraceSpec{
		Argv: s.sproutArgv(ref, m.loop.Dev), Image: img, Timeout: 2 * time.Minute,
		KillAt: next.Occurrence, Counts: func(w harness.DiskWrite, _ int) bool { return next.matches(w) },
	})
	if perr := m.powerOff(ctx); err == nil {
		err = perr
	}
	if err == nil && tr.Killed == nil {
		err = fmt.Errorf("it ended (%s) without making write %v", ending(tr), next)
	}
	if err != nil {
		return fmt.Errorf("run stopped after the first table write: %w", err)
	}
	got, err := readDiskGPT(img, ss, ref.oldBackupLBA)
	if err != nil {
		return err
	}
	if d := sameTable(ref.known.Relocated, got); len(d) > 0 {
		return fmt.Errorf("the first table sprout writes (on the disk after write %d) is not the old table as `sfdisk --relocate gpt-bak-std` relocates it: %v", ref.relocationEnd+1, d)
	}
	return nil
}

// missing lists the elements of got that are not in want.
func missing(want, got []string) []string {
	in := map[string]bool{}
	for _, w := range want {
		in[w] = true
	}
	var out []string
	for _, g := range got {
		if !in[g] {
			out = append(out, g)
		}
	}
	return out
}

type uninterruptedRun struct {
	*harness.TraceResult
	root int
	size int64
}

// uninterrupted runs sprout on a copy of the base and checks the result;
// the first call fills in ref's new table and partitions.
func (s *suite) uninterrupted(ctx context.Context, ref *reference, img string) (*uninterruptedRun, error) {
	if err := harness.CopySparse(ref.base, img); err != nil {
		return nil, err
	}
	size, err := harness.Size(img)
	if err != nil {
		return nil, err
	}
	m, err := boot(ctx, img, ref.sc.SectorSize)
	if err != nil {
		return nil, err
	}
	run, err := s.checkedRun(ctx, ref, m)
	if perr := m.powerOff(ctx); err == nil {
		err = perr
	}
	if err != nil {
		return nil, err
	}
	run.size = size
	return run, nil
}

func (s *suite) checkedRun(ctx context.Context, ref *reference, m *machine) (*uninterruptedRun, error) {
	dev := m.loop.Dev
	res, err := harness.TraceWrites(ctx, harness.TraceSpec{Argv: s.sproutArgv(ref, dev), Image: m.img, Timeout: 2 * time.Minute})
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("sprout: %s:\n%s", ending(res), res.Stderr)
	}
	if len(res.Untraceable) > 0 {
		return nil, fmt.Errorf("writes the tracer cannot follow: %v", res.Untraceable)
	}
	if len(res.Writes) == 0 {
		return nil, errors.New("sprout made no disk writes")
	}
	if p := writesInto(res.Writes, ref.existingRegions()); len(p) > 0 {
		return nil, fmt.Errorf("sprout wrote into existing partitions:\n%s", strings.Join(p, "\n"))
	}
	root := res.PID
	tbl, err := harness.ReadTable(ctx, dev)
	if err != nil {
		return nil, err
	}
	if err := checkKernelView(dev, tbl); err != nil {
		return nil, err
	}
	again, err := harness.TraceWrites(ctx, harness.TraceSpec{Argv: s.settledArgv(ref, dev), Image: m.img, Timeout: 2 * time.Minute})
	if err != nil {
		return nil, err
	}
	if again.ExitCode != 0 || len(again.Writes) > 0 {
		return nil, fmt.Errorf("the run after it: exit %d, %d disk writes (want none)", again.ExitCode, len(again.Writes))
	}
	if ref.newTable != nil {
		if d := harness.Diff(ref.newTable, tbl); len(d) > 0 {
			return nil, fmt.Errorf("two uninterrupted runs made different tables: %v", d)
		}
		return &uninterruptedRun{TraceResult: res, root: root}, nil
	}

	// First run: learn and check the new table.
	ref.newTable = tbl
	sg, err := sgdisk(ctx, dev)
	if err != nil {
		return nil, err
	}
	ref.newSgdisk = sg.Problems
	byName := map[string]harness.Partition{}
	for _, p := range tbl.Partitions {
		byName[p.Name] = p
	}
	for _, o := range ref.oldTable.Partitions {
		if slices.Contains(ref.sc.FactoryReset, o.Name) {
			continue // erased and created anew: checked as a new partition
		}
		n, ok := byName[o.Name]
		if !ok || n.Entry != o.Entry || n.Start != o.Start || n.Size < o.Size || n.Type != o.Type || n.UUID != o.UUID {
			return nil, fmt.Errorf("existing partition %v became %v", o, n)
		}
	}
	for _, name := range ref.sc.Grown {
		var old harness.Partition
		for _, o := range ref.oldTable.Partitions {
			if o.Name == name {
				old = o
			}
		}
		if n := byName[name]; old.Size == 0 || n.Size <= old.Size {
			return nil, fmt.Errorf("partition %q was to grow: %v → %v", name, old, n)
		}
	}
	if len(tbl.Partitions) != len(ref.oldTable.Partitions)-len(ref.sc.FactoryReset)+len(ref.sc.New) {
		return nil, fmt.Errorf("table after the run has %d partitions, want %d old - %d erased + %d new:\n%s", len(tbl.Partitions), len(ref.oldTable.Partitions), len(ref.sc.FactoryReset), len(ref.sc.New), tbl)
	}
	for _, want := range ref.sc.New {
		p, ok := byName[want.Name]
		if !ok {
			return nil, fmt.Errorf("no partition %q after the run:\n%s", want.Name, tbl)
		}
		np := newPart{region: region{Name: want.Name, Off: p.StartBytes(tbl), Size: p.SizeBytes(tbl)}, Entry: p.Entry, Format: want.Format}
		node := fmt.Sprintf("%sp%d", dev, p.Entry)
		if np.Probe, err = harness.Probe(ctx, node, 0, np.Size); err != nil {
			return nil, err
		}
		if err := checkFS(ctx, node, np.Size, np.Format, nil); err != nil {
			return nil, fmt.Errorf("partition %q: %w", want.Name, err)
		}
		ref.newParts = append(ref.newParts, np)
	}
	return &uninterruptedRun{TraceResult: res, root: root}, nil
}

// unexplainedSgdisk returns the problems sgdisk -v reports on a crashed
// disk that none of the old, the relocated and the new disk has and that
// the crash state does not explain: a complaint about the CRC or header of the main
// (primary) table is explained when the primary copy is damaged, one
// about the backup (secondary) when the backup copy sgdisk reads is.
func (r *reference) unexplainedSgdisk(problems []string, d *diskGPT) []string {
	known := map[string]bool{}
	for _, p := range slices.Concat(r.oldSgdisk, r.relocatedSgdisk, r.newSgdisk) {
		known[p] = true
	}
	var out []string
	for _, p := range problems {
		l := strings.ToLower(p)
		copyProblem := strings.Contains(l, "crc") || strings.Contains(l, "header")
		switch {
		case known[p]:
		case copyProblem && strings.Contains(l, "main") && !d.Primary.Intact():
		case copyProblem && (strings.Contains(l, "backup") || strings.Contains(l, "secondary")) && !sgdiskBackup(d).Intact():
		default:
			out = append(out, p)
		}
	}
	return out
}

// sgdiskBackup is the backup copy sgdisk reads: where the primary header
// points when that header itself is sound, else the last LBA.
func sgdiskBackup(d *diskGPT) harness.GPTCopy {
	p := d.Primary
	if p.Intact() || p.Problem == "entry array CRC mismatch" {
		alt := binary.LittleEndian.Uint64(p.Header[32:])
		for _, c := range []harness.GPTCopy{d.AtEnd, d.Other} {
			if c.LBA == alt && (c.Header != nil || c.Problem != "") {
				return c
			}
		}
		return harness.GPTCopy{LBA: alt, Problem: "not read"}
	}
	return d.AtEnd
}

// toolsOnCrashed checks what sfdisk (libfdisk) and sgdisk make of a crashed
// disk, booted as m: libfdisk must read the table of rule 2; sgdisk must
// load the old (= relocated) or the new table and may only complain about what the
// crash explains (see unexplainedSgdisk). Both tools read nothing but the
// table areas, so their findings are cached per content of those areas:
// most crash points leave one of a few states.
func (r *reference) toolsOnCrashed(ctx context.Context, m *machine, d *diskGPT, v gptVerdict) []string {
	key, err := r.tableAreasKey(m.img)
	if err != nil {
		return []string{err.Error()}
	}
	r.toolsMu.Lock()
	found, ok := r.tools[key]
	r.toolsMu.Unlock()
	if ok {
		return found
	}
	found = r.runTools(ctx, m.loop.Dev, d, v)
	r.toolsMu.Lock()
	if r.tools == nil {
		r.tools = map[string][]string{}
	}
	r.tools[key] = found
	r.toolsMu.Unlock()
	return found
}

func (r *reference) runTools(ctx context.Context, dev string, d *diskGPT, v gptVerdict) []string {
	var out []string
	tbl, err := harness.ReadTable(ctx, dev)
	switch {
	case err != nil:
		out = append(out, fmt.Sprintf("sfdisk on the crashed disk: %v", err))
	default:
		want := map[string]*harness.Table{tableOld: r.oldTable, tableRelocated: r.relocatedTable, tableNew: r.newTable}[v.Effective]
		if d := harness.Diff(want, tbl); want != nil && len(d) > 0 {
			out = append(out, fmt.Sprintf("sfdisk on the crashed disk: not the %s table: %v", v.Effective, d))
		}
	}
	sg, err := sgdisk(ctx, dev)
	if err != nil {
		return append(out, fmt.Sprintf("sgdisk on the crashed disk: %v", err))
	}
	if bad := r.unexplainedSgdisk(sg.Problems, d); len(bad) > 0 {
		out = append(out, fmt.Sprintf("sgdisk -v on the crashed disk reports %q (state %s)", bad, v.State))
	}
	// The relocated table has the old one's partitions (less those a
	// factory reset erases).
	if sg.Table != tableString(r.oldTable) && sg.Table != tableString(r.newTable) && sg.Table != tableString(r.relocatedTable) {
		out = append(out, fmt.Sprintf("sgdisk loads partitions %s: neither the old (and relocated) table's (%s) nor the new one's (%s)", sg.Table, tableString(r.oldTable), tableString(r.newTable)))
	}
	return out
}

// tableAreasKey hashes everything outside the three tables' usable areas:
// the protective MBR, the primaries, and the sectors from each table's
// last usable LBA to its backup header.
func (r *reference) tableAreasKey(img string) (string, error) {
	f, err := os.Open(img)
	if err != nil {
		return "", err
	}
	defer f.Close()
	ss := r.sc.SectorSize
	h := sha256.New()
	areas := []region{{Off: 0, Size: int64(max(r.oldTable.FirstLBA, r.newTable.FirstLBA)) * ss}}
	areas = append(areas, region{Off: int64(r.oldTable.LastLBA+1) * ss, Size: int64(r.oldBackupLBA-r.oldTable.LastLBA) * ss})
	areas = append(areas, r.tableAreas[1])
	if r.relocatedTable.LastLBA != r.newTable.LastLBA {
		areas = append(areas, region{Off: int64(r.relocatedTable.LastLBA+1) * ss, Size: r.tableAreas[1].End() - int64(r.relocatedTable.LastLBA+1)*ss})
	}
	for _, a := range areas {
		buf := make([]byte, a.Size)
		if _, err := f.ReadAt(buf, a.Off); err != nil {
			return "", fmt.Errorf("read table area of %s: %w", img, err)
		}
		h.Write(buf)
	}
	return string(h.Sum(nil)), nil
}
