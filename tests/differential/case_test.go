package differential

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// diffCase is one comparison: an input image, the definitions and the
// flags both tools get.
type diffCase struct {
	name       string
	describe   string // base image, growth and flags, for reports
	repro      string // how to re-run just this case
	input      string // prepared input image; never modified
	absent     bool   // the device path does not exist (for --empty=create)
	sectorSize int64
	loop       bool // run the tools on loop devices (sector sizes other than 512)
	defDirs    []string
	repartSeed string
	args       []string // extra flags such as --empty= and --size=
	rerun      bool     // also compare a second run on the results
	oracleWant *oracleExpect
	deviation  *deviation
	checks     []tableCheck
}

// deviation is a documented, deliberate difference between sprout and 252
// (docs/compatibility.md) for one scenario step: either sprout refuses an
// input 252 silently ignores, or a partition gets the attributes its
// definition asks for where 252 writes others.
type deviation struct {
	Why string `json:"why"`
	// Refuse: sprout exits 1 with this text on stderr and writes nothing.
	Refuse string `json:"refuse,omitempty"`
	// Attrs: sfdisk's attrs string sprout writes, by entry number.
	Attrs map[string]string `json:"attrs,omitempty"`
	// Before: the deviation exists only against oracles older than this
	// systemd version (a later version behaves as sprout does).
	Before int `json:"before,omitempty"`
}

// tableCheck is an extra assertion on a result table (e.g. home:var ≈ 2:1).
type tableCheck struct {
	name string
	fn   func(*harness.Table) error
}

type caseKind string

const (
	kindEqual     caseKind = "equal"     // the oracle succeeded; sprout must produce the same disk
	kindRelocated caseKind = "relocated" // the oracle refused, succeeded after sfdisk --relocate
	kindRefused   caseKind = "refused"   // the oracle refused; sprout must refuse and write nothing
	// kindOracleAssert: the oracle aborted on its own assertion (an
	// upstream bug); there is no answer to compare with. Counted apart in
	// the summary, never as equal or refused.
	kindOracleAssert caseKind = "oracle-assertion"
)

// Failure categories, reported separately.
const (
	catHarness  = "harness"  // the harness itself could not do its job
	catExit     = "exit"     // exit codes differ
	catTable    = "table"    // sfdisk --json differs
	catGPT      = "gpt"      // raw GPT bytes differ although the tables are equal
	catFS       = "fs"       // a new partition's file system differs (blkid TYPE/LABEL/UUID, mkfs's fields, swap header, fsck.fat)
	catContent  = "content"  // a new partition without file system holds different bytes
	catGaps     = "gaps"     // bytes outside partitions and GPT structures differ
	catJSON     = "json"     // --json=short output differs
	catPreserve = "preserve" // bytes outside sprout's remit changed
	catDryRun   = "dryrun"   // --dry-run=yes wrote to the image
	catRerun    = "rerun"    // the second run differs
	catScenario = "scenario" // a scenario-specific assertion failed
	catFixture  = "fixture"  // the oracle did not reproduce a published vector
)

// jsonFields are the --json=short keys compared (node holds file names).
var jsonFields = []string{"type", "label", "uuid", "partno", "file", "offset", "old_size", "raw_size",
	"old_padding", "raw_padding", "activity", "drop-in_files"}

// toolRun is one tool's run on its own copy of the input.
type toolRun struct {
	first     harness.Result // run on a plain copy of the input
	final     harness.Result // the run whose result counts (first, or the retry)
	copy      string         // the plain copy the first run worked on
	image     string         // image holding the result (copy, or the relocated copy)
	retried   bool           // refused, then succeeded on a copy relocated with sfdisk
	relocated bool           // succeeded but left the backup GPT misplaced; the harness relocated it
	wrote     bool           // the first run wrote to its copy (or created it)
	notes     []string       // transient failures that were retried
}

// outcome collects everything about a case for classification and reports.
type outcome struct {
	c           *diffCase
	kind        caseKind
	inTable     *harness.Table
	oracle      *toolRun
	sprout      *toolRun
	want, got   *harness.Table
	rerunO      *harness.Result
	rerunS      *harness.Result
	dryRun      *harness.Result
	randomUUID  map[int]bool // entries whose UUID the oracle randomized (seed-derived one taken)
	fatGeometry bool         // a vfat's geometry differs in a fatKnown field (counted, not failed)
	deepFS      int          // file systems compared beyond blkid (compareFSDeep)
	deepFSTime  time.Duration
	failures    map[string][]string
	failOrder   []string
	notes       []string
	durationMS  int64
}

func (o *outcome) fail(cat, format string, args ...any) {
	if o.failures == nil {
		o.failures = map[string][]string{}
	}
	if _, seen := o.failures[cat]; !seen {
		o.failOrder = append(o.failOrder, cat)
	}
	o.failures[cat] = append(o.failures[cat], fmt.Sprintf(format, args...))
}

func (o *outcome) failed() bool         { return len(o.failures) > 0 }
func (o *outcome) categories() []string { return o.failOrder }

// fixedMtime marks an image before a run: any write moves its mtime.
var fixedMtime = time.Unix(1_000_000_000, 0)

// runCase runs both tools on copies of c.input inside dir and compares. It
// returns an error only when the harness cannot continue; comparison
// failures are recorded in the outcome.
func (s *suite) runCase(ctx context.Context, c *diffCase, dir string) (*outcome, error) {
	start := time.Now()
	o := &outcome{c: c}
	defer func() { o.durationMS = time.Since(start).Milliseconds() }()
	if !c.absent {
		t, err := s.readTable(ctx, c, c.input)
		if err != nil && !errors.Is(err, harness.ErrNoTable) {
			return o, err
		}
		o.inTable = t
	}
	var err error
	if o.oracle, err = s.runExpected(ctx, s.oracle.Path, c, dir, "oracle"); err != nil {
		if errors.Is(err, harness.ErrOracleAssertion) {
			o.kind = kindOracleAssert
			o.notes = append(o.notes, err.Error())
			return o, nil
		}
		return o, err
	}
	if s.selfTest {
		// The oracle as "sprout" gets the same normalisation as the oracle,
		// so the self-test checks the harness's determinism only.
		o.sprout, err = s.runExpected(ctx, s.sprout, c, dir, "sprout")
	} else {
		o.sprout, err = s.runPlain(ctx, s.sprout, c, dir, "sprout")
	}
	if err != nil {
		return o, err
	}
	if s.selfTest {
		c.deviation = nil // the oracle has none of sprout's deviations
	}
	if d := c.deviation; d != nil && d.Refuse != "" {
		o.kind = kindRefused
		return o, s.compareDeviationRefusal(c, o)
	}
	switch {
	case o.oracle.final.ExitCode != 0:
		o.kind = kindRefused
	case o.oracle.retried:
		o.kind = kindRelocated
	default:
		o.kind = kindEqual
	}
	if o.kind == kindRefused {
		err = s.compareRefused(ctx, c, o)
	} else {
		err = s.compareSuccess(ctx, c, o)
	}
	if err != nil {
		return o, err
	}
	if err := s.checkDryRun(ctx, c, dir, o); err != nil {
		return o, err
	}
	if c.rerun && o.kind != kindRefused && !o.failed() {
		if err := s.compareRerun(ctx, c, o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// prepare puts a fresh copy of the input at img, with a fixed old mtime
// so that any later write is noticed.
func prepare(c *diffCase, img string) error {
	if c.absent {
		return nil
	}
	if err := harness.CopySparse(c.input, img); err != nil {
		return err
	}
	return os.Chtimes(img, fixedMtime, fixedMtime)
}

// wroteTo reports whether a tool wrote to img since prepare (for an absent
// input: whether it created img).
func wroteTo(img string, absent bool) (bool, error) {
	st, err := os.Stat(img)
	if absent && errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return absent || !st.ModTime().Equal(fixedMtime), nil
}

// runPlain runs bin once on a fresh copy of the input.
func (s *suite) runPlain(ctx context.Context, bin string, c *diffCase, dir, prefix string) (*toolRun, error) {
	img := filepath.Join(dir, prefix+".img")
	if err := prepare(c, img); err != nil {
		return nil, err
	}
	tr := &toolRun{copy: img, image: img}
	restore := func() error {
		if err := os.Remove(img); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return prepare(c, img)
	}
	res, err := s.runStable(ctx, bin, c, img, restore, &tr.notes)
	if err != nil {
		return nil, err
	}
	tr.first, tr.final = res, res
	if tr.wrote, err = wroteTo(img, c.absent); err != nil {
		return nil, err
	}
	return tr, nil
}

// transientRE matches failures caused by the machine rather than the disk:
// loop devices and the kernel's partition rescan are shared with every
// other test running at the same time.
var transientRE = regexp.MustCompile(`Failed to make loopback device|Failed to reread partition table|Device or resource busy|Resource temporarily unavailable`)

// runStable runs bin on img. A transient failure of the oracle (or of the
// oracle standing in for sprout in the self-test) is retried after restore
// puts img back; sprout's own failures are never retried.
func (s *suite) runStable(ctx context.Context, bin string, c *diffCase, img string, restore func() error, notes *[]string) (harness.Result, error) {
	for attempt := 1; ; attempt++ {
		res, err := s.runTool(ctx, bin, c, img, false)
		if err != nil || res.ExitCode == 0 || restore == nil || attempt == 3 ||
			s.isSprout(bin) || !transientRE.MatchString(res.Stderr) {
			return res, err
		}
		*notes = append(*notes, fmt.Sprintf("retried %s after a transient failure (exit %d): %s",
			filepath.Base(bin), res.ExitCode, strings.TrimSpace(transientRE.FindString(res.Stderr))))
		if err := restore(); err != nil {
			return res, err
		}
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
}

// runExpected runs bin the way the expected result is computed: after a
// success a misplaced backup GPT is relocated (sprout always relocates on a
// grown disk), and after a refusal on a grown disk the run is retried on a
// relocated copy (systemd issue 38315: sprout goes beyond 252 there).
func (s *suite) runExpected(ctx context.Context, bin string, c *diffCase, dir, prefix string) (*toolRun, error) {
	tr, err := s.runPlain(ctx, bin, c, dir, prefix)
	if err != nil {
		return nil, err
	}
	if tr.first.ExitCode == 0 {
		// Without definitions sprout, like 252, does nothing at all; with
		// any, it always moves a misplaced backup GPT.
		if !c.hasDefinitions() {
			return tr, nil
		}
		tr.relocated, err = s.relocateIfMisplaced(ctx, c, tr.image)
		return tr, err
	}
	if c.absent {
		return tr, nil
	}
	misplaced, err := harness.BackupMisplaced(c.input, c.sectorSize)
	if err != nil || !misplaced {
		return tr, err
	}
	img := filepath.Join(dir, prefix+"-relocated.img")
	relocated := func() error {
		if err := harness.CopySparse(c.input, img); err != nil {
			return err
		}
		return s.withDevice(ctx, c, img, func(dev string) error { return harness.Relocate(ctx, dev) })
	}
	if err := relocated(); err != nil {
		return nil, err
	}
	res, err := s.runStable(ctx, bin, c, img, relocated, &tr.notes)
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return tr, nil
	}
	tr.final, tr.image, tr.retried = res, img, true
	tr.relocated, err = s.relocateIfMisplaced(ctx, c, img)
	return tr, err
}

func (s *suite) relocateIfMisplaced(ctx context.Context, c *diffCase, img string) (bool, error) {
	misplaced, err := harness.BackupMisplaced(img, c.sectorSize)
	if err != nil || !misplaced {
		return false, err
	}
	return true, s.withDevice(ctx, c, img, func(dev string) error { return harness.Relocate(ctx, dev) })
}

// argv builds the command line shared by both tools (extra: sprout's own
// flags, before the device).
func (c *diffCase) argv(bin, dev string, dryRun bool, extra ...string) []string {
	a := []string{bin}
	if dryRun {
		a = append(a, "--dry-run=yes")
	} else {
		a = append(a, "--dry-run=no")
	}
	for _, d := range c.defDirs {
		a = append(a, "--definitions="+d)
	}
	a = append(a, "--seed="+c.repartSeed, "--json=short")
	a = append(a, c.args...)
	a = append(a, extra...)
	return append(a, dev)
}

// isSprout reports whether bin is the binary under test (in the
// self-test, where sprout is 252 itself, it counts as the oracle).
func (s *suite) isSprout(bin string) bool { return bin == s.sprout && !s.selfTest }

// sproutFlags are the flags only sprout gets: the systemd version whose
// behaviour it is compared under.
func (s *suite) sproutFlags() []string {
	if s.compat == 0 {
		return nil
	}
	return []string{fmt.Sprintf("--compat=%d", s.compat)}
}

// runTool runs bin, sprout or the oracle's systemd-repart, on img (through
// a loop device when the case needs one).
func (s *suite) runTool(ctx context.Context, bin string, c *diffCase, img string, dryRun bool) (harness.Result, error) {
	var res harness.Result
	err := s.withDevice(ctx, c, img, func(dev string) error {
		var err error
		if s.isSprout(bin) {
			res, err = harness.Run(ctx, nil, c.argv(bin, dev, dryRun, s.sproutFlags()...)...)
		} else {
			res, err = s.oracle.Run(ctx, nil, c.argv(bin, dev, dryRun)...)
		}
		return err
	})
	return res, err
}

// withDevice calls fn with the device to operate on: the image itself, or
// a loop device with the case's sector size attached for the duration.
func (s *suite) withDevice(ctx context.Context, c *diffCase, img string, fn func(dev string) error) error {
	return withDevice(ctx, c, img, fn)
}

func withDevice(ctx context.Context, c *diffCase, img string, fn func(dev string) error) error {
	if !c.loop {
		return fn(img)
	}
	l, err := harness.AttachLoop(ctx, img, c.sectorSize)
	if err != nil {
		return err
	}
	ferr := fn(l.Dev)
	if err := l.Detach(ctx); err != nil && ferr == nil {
		ferr = err
	}
	return ferr
}

func (s *suite) readTable(ctx context.Context, c *diffCase, img string) (*harness.Table, error) {
	var t *harness.Table
	err := s.withDevice(ctx, c, img, func(dev string) error {
		var err error
		t, err = harness.ReadTable(ctx, dev)
		return err
	})
	return t, err
}

func fromScratch(c *diffCase, in *harness.Table) bool {
	return in == nil || slices.Contains(c.args, "--empty=force") || slices.Contains(c.args, "--empty=create")
}

// compareSuccess: the oracle produced a disk; sprout must produce the same.
func (s *suite) compareSuccess(ctx context.Context, c *diffCase, o *outcome) error {
	var err error
	if o.want, err = s.readTableOpt(ctx, c, o.oracle.image); err != nil {
		return fmt.Errorf("read the oracle's result: %w", err)
	}
	s.checkFixture(c, o)
	if o.sprout.final.ExitCode != 0 {
		o.fail(catExit, "oracle exit 0 (%s), sprout exit %d", o.kind, o.sprout.final.ExitCode)
		return nil
	}
	if o.got, err = s.readTableOpt(ctx, c, o.sprout.image); err != nil {
		o.fail(catTable, "cannot read sprout's partition table: %v", err)
		return nil
	}
	o.randomUUID = randomizedEntries(o.oracle.final.Stderr, o.inTable, o.want, o.got)
	deviated := c.deviation != nil && len(c.deviation.Attrs) > 0 && o.want != nil
	if deviated {
		o.want = withAttrs(o.want, c.deviation.Attrs)
		o.notes = append(o.notes, "documented deviation: "+c.deviation.Why)
	}
	switch {
	case o.want == nil && o.got != nil:
		o.fail(catTable, "the oracle left the disk without a partition table, sprout wrote one")
	case o.want != nil && o.got == nil:
		o.fail(catTable, "sprout's result has no partition table")
	case o.want != nil:
		if d := harness.DiffExcept(o.want, o.got, o.randomUUID); len(d) > 0 {
			for _, line := range d {
				o.fail(catTable, "%s", line)
			}
		} else if len(o.randomUUID) > 0 {
			checkUniqueUUIDs(o, catTable, o.want, o.got, o.randomUUID)
		} else if deviated {
			// The entry arrays differ in the deviating attributes.
		} else if err := compareRawGPT(c, o); err != nil {
			return err
		}
		if err := s.compareFS(ctx, c, o); err != nil {
			return err
		}
		if len(o.failures[catTable]) == 0 {
			if err := s.compareGaps(c, o); err != nil {
				return err
			}
		}
	}
	compareJSON(o, catJSON, o.oracle.final.Stdout, o.sprout.final.Stdout, randomOffsets(o.want, o.randomUUID))
	if err := s.checkPreserved(c, o); err != nil {
		return err
	}
	if o.kind == kindEqual && !o.oracle.wrote && o.sprout.wrote {
		// Writing where 252 writes nothing is allowed only to relocate a
		// misplaced backup GPT (a grown disk).
		misplaced, err := harness.BackupMisplaced(c.input, c.sectorSize)
		if err != nil {
			return err
		}
		if !misplaced {
			o.fail(catPreserve, "sprout wrote to the image although the oracle found nothing to do")
		}
	}
	for _, chk := range c.checks {
		for who, t := range map[string]*harness.Table{"oracle": o.want, "sprout": o.got} {
			if t == nil {
				continue
			}
			if err := chk.fn(t); err != nil {
				o.fail(catScenario, "%s on %s's result: %v", chk.name, who, err)
			}
		}
	}
	return nil
}

// readTableOpt is readTable with "no partition table" as a nil table.
func (s *suite) readTableOpt(ctx context.Context, c *diffCase, img string) (*harness.Table, error) {
	if c.absent {
		if _, err := os.Stat(img); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	t, err := s.readTable(ctx, c, img)
	if errors.Is(err, harness.ErrNoTable) {
		return nil, nil
	}
	return t, err
}

func compareRawGPT(c *diffCase, o *outcome) error {
	want, err := harness.ReadRawGPT(o.oracle.image, c.sectorSize)
	if err != nil {
		return fmt.Errorf("read the oracle's GPT: %w", err)
	}
	got, err := harness.ReadRawGPT(o.sprout.image, c.sectorSize)
	if err != nil {
		o.fail(catGPT, "cannot read sprout's GPT: %v", err)
		return nil
	}
	for _, line := range harness.DiffRaw(want, got) {
		o.fail(catGPT, "%s", line)
	}
	return nil
}

// compareFS probes every partition that did not exist in the input (all of
// them when the table was created from scratch) on both results.
func (s *suite) compareFS(ctx context.Context, c *diffCase, o *outcome) error {
	old := map[int]harness.Partition{}
	if !fromScratch(c, o.inTable) {
		reset := recreated(c, o)
		for _, p := range o.inTable.Partitions {
			if !reset[p.Entry] {
				old[p.Entry] = p
			}
		}
	}
	for _, p := range o.want.Partitions {
		if q, ok := old[p.Entry]; ok && q.Start == p.Start {
			continue
		}
		off, size := p.StartBytes(o.want), p.SizeBytes(o.want)
		w, err := harness.Probe(ctx, o.oracle.image, off, size)
		if err != nil {
			return fmt.Errorf("probe the oracle's partition %d: %w", p.Entry, err)
		}
		g, err := harness.Probe(ctx, o.sprout.image, off, size)
		if err != nil {
			o.fail(catFS, "partition %d: blkid failed on sprout's image: %v", p.Entry, err)
			continue
		}
		for _, k := range []string{"TYPE", "LABEL", "UUID"} {
			if k == "UUID" && o.randomUUID[p.Entry] {
				continue // derived from the randomized partition UUID
			}
			if w[k] != g[k] {
				o.fail(catFS, "partition %d (%s) %s: oracle %q, sprout %q", p.Entry, p.Name, k, w[k], g[k])
			}
		}
		if w["TYPE"] != "" && w["TYPE"] == g["TYPE"] {
			start := time.Now()
			if err := s.compareFSDeep(ctx, o, p.Entry, p.Name, w["TYPE"], off, size, o.randomUUID[p.Entry]); err != nil {
				return err
			}
			o.deepFS++
			o.deepFSTime += time.Since(start)
		}
		if len(w) > 0 || len(g) > 0 {
			continue
		}
		// No file system on either side: the bytes are deterministic
		// (252 wipes and discards a new partition), so compare them.
		hw, err := harness.RangeHash(o.oracle.image, off, size)
		if err != nil {
			return err
		}
		hg, err := harness.RangeHash(o.sprout.image, off, size)
		if err != nil {
			return err
		}
		if hw != hg {
			first, err := harness.FirstDifference(o.oracle.image, o.sprout.image, off, size)
			if err != nil {
				return err
			}
			o.fail(catContent, "new partition %d (%s, no file system) holds different bytes, first near byte %d (+%d into it): old data not wiped/discarded?",
				p.Entry, p.Name, first, first-off)
		}
	}
	return nil
}

// compareGaps compares the bytes outside every partition and outside the
// GPT structures: 252 discards the free space around new partitions, and
// whatever sprout does there must match. The input's old backup GPT (a
// grown disk) is left out: leaving or clearing a stale copy is harmless.
// compareGaps checks the bytes outside partitions and GPT structures.
// sprout deliberately never discards free space (docs/compatibility.md:
// boot loaders of single-board computers live there), so on an existing
// table its gaps must still hold the input's bytes; 252 discards them. A
// table made from scratch wipes the disk in both tools, so then sprout is
// compared with the oracle.
func (s *suite) compareGaps(c *diffCase, o *outcome) error {
	ref, refName := o.oracle.image, "the oracle's"
	if !fromScratch(c, o.inTable) && !s.selfTest {
		ref, refName = c.input, "the input's"
	}
	raw, err := harness.ReadRawGPT(o.oracle.image, c.sectorSize)
	if err != nil {
		return err
	}
	ss := c.sectorSize
	lo := int64(raw.Primary.EntriesLBA)*ss + int64(len(raw.PrimaryEntries))
	hi := int64(raw.Backup.EntriesLBA) * ss
	if raw.Backup.EntriesLBA == 0 {
		hi = raw.DiskSize - 33*ss
	}
	var cuts [][2]int64
	for _, p := range o.want.Partitions {
		cuts = append(cuts, [2]int64{p.StartBytes(o.want), p.StartBytes(o.want) + p.SizeBytes(o.want)})
	}
	if !c.absent {
		if size, err := harness.Size(c.input); err == nil && size != raw.DiskSize {
			cuts = append(cuts, [2]int64{size - 34*ss, size})
		}
	}
	sort.Slice(cuts, func(i, j int) bool { return cuts[i][0] < cuts[j][0] })
	pos := lo
	check := func(from, to int64) error {
		if to <= from {
			return nil
		}
		hw, err := harness.RangeHash(ref, from, to-from)
		if err != nil {
			return err
		}
		hg, err := harness.RangeHash(o.sprout.image, from, to-from)
		if err != nil {
			return err
		}
		if hw != hg {
			first, err := harness.FirstDifference(ref, o.sprout.image, from, to-from)
			if err != nil {
				return err
			}
			o.fail(catGaps, "unpartitioned bytes [%d, %d) (sectors %d-%d) differ from %s, first near byte %d (sector %d)",
				from, to, from/ss, (to-1)/ss, refName, first, first/ss)
		}
		return nil
	}
	for _, cut := range cuts {
		if err := check(pos, min(cut[0], hi)); err != nil {
			return err
		}
		pos = max(pos, cut[1])
	}
	return check(pos, hi)
}

// compareJSON compares the --json=short reports field by field.
func compareJSON(o *outcome, cat, want, got string, randomAt map[string]bool) {
	if strings.TrimSpace(want) == "" {
		// e.g. "no definitions, nothing to do": 252 prints no JSON at all.
		if strings.TrimSpace(got) != "" {
			o.fail(cat, "the oracle printed nothing on stdout, sprout printed %q", got)
		}
		return
	}
	parse := func(s string) ([]map[string]any, error) {
		var v []map[string]any
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		err := dec.Decode(&v)
		return v, err
	}
	w, err := parse(want)
	if err != nil {
		o.fail(catHarness, "cannot parse the oracle's JSON: %v", err)
		return
	}
	g, err := parse(got)
	if err != nil {
		o.fail(cat, "sprout's --json=short output is not a JSON array: %v", err)
		return
	}
	if len(w) != len(g) {
		o.fail(cat, "oracle reports %d partitions, sprout %d", len(w), len(g))
	}
	for i := range min(len(w), len(g)) {
		for _, k := range jsonFields {
			wv, inW := w[i][k]
			gv, inG := g[i][k]
			if k == "uuid" && randomAt[fmt.Sprint(w[i]["offset"])] {
				continue
			}
			if inW != inG || fmt.Sprint(wv) != fmt.Sprint(gv) {
				o.fail(cat, "[%d].%s: oracle %s, sprout %s", i, k, jsonValue(wv, inW), jsonValue(gv, inG))
			}
		}
	}
}

func jsonValue(v any, present bool) string {
	if !present {
		return "(absent)"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// checkPreserved: every partition of the input keeps its bytes in sprout's
// result (sprout never writes inside an existing partition).
func (s *suite) checkPreserved(c *diffCase, o *outcome) error {
	if fromScratch(c, o.inTable) {
		return nil
	}
	reset := recreated(c, o)
	for _, p := range o.inTable.Partitions {
		if reset[p.Entry] {
			continue // erased by the oracle too; compared as a new partition
		}
		off, size := p.StartBytes(o.inTable), p.SizeBytes(o.inTable)
		w, err := harness.RangeHash(c.input, off, size)
		if err != nil {
			return err
		}
		g, err := harness.RangeHash(o.sprout.image, off, size)
		if err != nil {
			return err
		}
		if w != g {
			o.fail(catPreserve, "the content of existing partition %d (%s) changed", p.Entry, p.Name)
		}
	}
	return nil
}

// compareRefused: the oracle refused even after relocation; sprout must
// refuse with the same exit code and leave its copy byte-identical.
func (s *suite) compareRefused(ctx context.Context, c *diffCase, o *outcome) error {
	s.checkFixture(c, o)
	if o.sprout.final.ExitCode != o.oracle.first.ExitCode {
		o.fail(catExit, "oracle refused with exit %d, sprout exit %d", o.oracle.first.ExitCode, o.sprout.final.ExitCode)
	} else if o.sprout.final.Stderr != "" || o.oracle.first.Stderr != "" {
		// Both refuse: for one class of reason, or it is no agreement.
		// (Both silent is an answer, not a refusal: --can-factory-reset
		// exits 1 when there is nothing to reset.)
		sc, sl := harness.SproutRefusal(o.sprout.final.Stderr)
		rc, rl := harness.RepartRefusal(o.oracle.first.Stderr)
		if sc == harness.RefusedUnknown || sc != rc {
			o.fail(catExit, "both refuse, for reasons of different or unknown classes (tests/harness/refusal.go): sprout %q (%q), oracle %q (%q)", sc, sl, rc, rl)
		}
	}
	if o.sprout.final.ExitCode == 0 {
		o.got, _ = s.readTable(ctx, c, o.sprout.image) // for the report only
	}
	if c.absent {
		if _, err := os.Stat(o.sprout.copy); err == nil {
			o.fail(catPreserve, "sprout created %s although the oracle refused", filepath.Base(o.sprout.image))
		}
		return nil
	}
	return checkCopyUnchanged(c, o, "the oracle refused; sprout's copy of the input is no longer byte-identical")
}

// checkCopyUnchanged fails o with msg when sprout's copy of the input
// differs from the input in any byte.
func checkCopyUnchanged(c *diffCase, o *outcome, msg string) error {
	want, err := harness.ContentHash(c.input)
	if err != nil {
		return err
	}
	got, err := harness.ContentHash(o.sprout.copy)
	if err != nil {
		return err
	}
	if want != got {
		o.fail(catPreserve, "%s", msg)
	}
	return nil
}

// compareDeviationRefusal checks a documented refusal: 252 accepts the
// input, sprout must refuse it with the expected message and leave its
// copy byte-identical.
func (s *suite) compareDeviationRefusal(c *diffCase, o *outcome) error {
	o.notes = append(o.notes, "documented deviation: "+c.deviation.Why)
	if o.oracle.first.ExitCode != 0 {
		o.fail(catFixture, "the deviation says 252 accepts this input, but it exited %d", o.oracle.first.ExitCode)
	}
	if got := o.sprout.final.ExitCode; got != 1 {
		o.fail(catExit, "sprout should refuse (documented deviation) with exit 1, got %d", got)
	}
	if !strings.Contains(o.sprout.final.Stderr, c.deviation.Refuse) {
		o.fail(catExit, "sprout's refusal does not mention %q: %s", c.deviation.Refuse, o.sprout.final.Stderr)
	}
	if c.absent {
		return nil
	}
	return checkCopyUnchanged(c, o, "sprout refused but its copy of the input is no longer byte-identical")
}

// hasDefinitions reports whether any definition directory holds a *.conf.
func (c *diffCase) hasDefinitions() bool {
	for _, d := range c.defDirs {
		if m, _ := filepath.Glob(filepath.Join(d, "*.conf")); len(m) > 0 {
			return true
		}
	}
	return false
}

// withAttrs returns a copy of t with the attrs of the given entries replaced.
func withAttrs(t *harness.Table, attrs map[string]string) *harness.Table {
	c := *t
	c.Partitions = append([]harness.Partition(nil), t.Partitions...)
	for i := range c.Partitions {
		if a, ok := attrs[strconv.Itoa(c.Partitions[i].Entry)]; ok {
			c.Partitions[i].Attrs = a
		}
	}
	return &c
}

// checkDryRun: sprout --dry-run=yes must not write to the image at all.
// Skipped for --empty=create and --size=, which change the file by design.
func (s *suite) checkDryRun(ctx context.Context, c *diffCase, dir string, o *outcome) error {
	if c.absent || slices.Contains(c.args, "--empty=create") ||
		slices.ContainsFunc(c.args, func(a string) bool { return strings.HasPrefix(a, "--size=") }) {
		return nil
	}
	img := filepath.Join(dir, "sprout-dry-run.img")
	if err := harness.CopySparse(c.input, img); err != nil {
		return err
	}
	if err := os.Chtimes(img, fixedMtime, fixedMtime); err != nil {
		return err
	}
	res, err := s.runTool(ctx, s.sprout, c, img, true)
	if err != nil {
		return err
	}
	o.dryRun = &res
	st, err := os.Stat(img)
	if err != nil {
		return err
	}
	if !st.ModTime().Equal(fixedMtime) {
		o.fail(catDryRun, "sprout --dry-run=yes (exit %d) wrote to the image", res.ExitCode)
	}
	return os.Remove(img)
}

// compareRerun runs both tools again on their own results: a second boot.
// Sprout must behave like the oracle, and must not write when the oracle
// found nothing to do.
func (s *suite) compareRerun(ctx context.Context, c *diffCase, o *outcome) error {
	for _, img := range []string{o.oracle.image, o.sprout.image} {
		if err := os.Chtimes(img, fixedMtime, fixedMtime); err != nil {
			return err
		}
	}
	ro, err := s.runStable(ctx, s.oracle.Path, c, o.oracle.image, s.rerunRestore(c, o.oracle.image), &o.notes)
	if errors.Is(err, harness.ErrOracleAssertion) {
		o.notes = append(o.notes, "second run not compared: "+err.Error())
		return nil
	}
	if err != nil {
		return err
	}
	rs, err := s.runStable(ctx, s.sprout, c, o.sprout.image, s.rerunRestore(c, o.sprout.image), &o.notes)
	if err != nil {
		return err
	}
	o.rerunO, o.rerunS = &ro, &rs
	wrote := func(img string) (bool, error) {
		st, err := os.Stat(img)
		return err == nil && !st.ModTime().Equal(fixedMtime), err
	}
	oWrote, err := wrote(o.oracle.image)
	if err != nil {
		return err
	}
	sWrote, err := wrote(o.sprout.image)
	if err != nil {
		return err
	}
	if ro.ExitCode != rs.ExitCode {
		o.fail(catRerun, "second run: oracle exit %d, sprout exit %d", ro.ExitCode, rs.ExitCode)
		return nil
	}
	if !oWrote && sWrote {
		o.fail(catRerun, "second run: sprout wrote to the image although the oracle found nothing to do")
	}
	if ro.ExitCode != 0 || !c.hasDefinitions() {
		return nil
	}
	if _, err := s.relocateIfMisplaced(ctx, c, o.oracle.image); err != nil {
		return err
	}
	if s.selfTest {
		if _, err := s.relocateIfMisplaced(ctx, c, o.sprout.image); err != nil {
			return err
		}
	}
	want, err := s.readTableOpt(ctx, c, o.oracle.image)
	if err != nil {
		return err
	}
	got, err := s.readTableOpt(ctx, c, o.sprout.image)
	if err != nil {
		o.fail(catRerun, "second run: cannot read sprout's table: %v", err)
		return nil
	}
	switch {
	case (want == nil) != (got == nil):
		o.fail(catRerun, "second run: oracle table present=%v, sprout table present=%v", want != nil, got != nil)
	case want != nil:
		if d := c.deviation; d != nil && len(d.Attrs) > 0 {
			want = withAttrs(want, d.Attrs)
		}
		random := randomizedEntries(ro.Stderr, o.want, want, got)
		for _, line := range harness.DiffExcept(want, got, random) {
			o.fail(catRerun, "second run table: %s", line)
		}
		if len(random) > 0 {
			checkUniqueUUIDs(o, catRerun, want, got, random)
		}
		compareJSON(o, catRerun, ro.Stdout, rs.Stdout, randomOffsets(want, random))
		return nil
	}
	compareJSON(o, catRerun, ro.Stdout, rs.Stdout, nil)
	return nil
}

// rerunRestore saves img so a second run that fails transiently can be
// repeated. Only runs that use loop devices or the kernel's partition rescan
// (loop cases, --empty=force) can fail that way; others get no retry.
func (s *suite) rerunRestore(c *diffCase, img string) func() error {
	if !c.loop && !slices.Contains(c.args, "--empty=force") {
		return nil
	}
	saved := img + ".before-rerun"
	if err := harness.CopySparse(img, saved); err != nil {
		return func() error { return err }
	}
	return func() error {
		if err := harness.CopySparse(saved, img); err != nil {
			return err
		}
		return os.Chtimes(img, fixedMtime, fixedMtime)
	}
}

// oracleExpect pins a scenario to a published vector, so a scenario that
// no longer reproduces upstream's setup is noticed (a fixture failure).
type oracleExpect struct {
	Exit       int           `json:"exit"`
	LastLBA    uint64        `json:"lastlba,omitempty"`
	Count      *int          `json:"count,omitempty"`
	Partitions []expectEntry `json:"partitions,omitempty"`
}

type expectEntry struct {
	Entry int    `json:"entry"`
	Start uint64 `json:"start,omitempty"`
	Size  uint64 `json:"size,omitempty"`
	Name  string `json:"name,omitempty"`
	UUID  string `json:"uuid,omitempty"`
}

func (s *suite) checkFixture(c *diffCase, o *outcome) {
	e := c.oracleWant
	if e == nil {
		return
	}
	if got := o.oracle.first.ExitCode; got != e.Exit {
		o.fail(catFixture, "oracle exit %d, the vector says %d", got, e.Exit)
	}
	t := o.want
	if t == nil {
		return
	}
	if e.LastLBA != 0 && t.LastLBA != e.LastLBA {
		o.fail(catFixture, "oracle lastlba %d, the vector says %d", t.LastLBA, e.LastLBA)
	}
	if e.Count != nil && len(t.Partitions) != *e.Count {
		o.fail(catFixture, "oracle made %d partitions, the vector says %d", len(t.Partitions), *e.Count)
	}
	for _, w := range e.Partitions {
		i := slices.IndexFunc(t.Partitions, func(p harness.Partition) bool { return p.Entry == w.Entry })
		if i < 0 {
			o.fail(catFixture, "oracle has no entry %d", w.Entry)
			continue
		}
		p := t.Partitions[i]
		if (w.Start != 0 && p.Start != w.Start) || (w.Size != 0 && p.Size != w.Size) ||
			(w.Name != "" && p.Name != w.Name) || (w.UUID != "" && !strings.EqualFold(p.UUID, w.UUID)) {
			o.fail(catFixture, "oracle entry %d is %s, the vector says %+v", w.Entry, p, w)
		}
	}
}

// report renders everything needed to understand and reproduce a failure.
func (o *outcome) report() string {
	c := o.c
	var b strings.Builder
	fmt.Fprintf(&b, "case %s (%s)\n", c.name, o.kind)
	if c.repro != "" {
		fmt.Fprintf(&b, "reproduce: %s\n", c.repro)
	}
	fmt.Fprintf(&b, "input: %s\n", c.describe)
	for _, cat := range o.failOrder {
		fmt.Fprintf(&b, "--- %s mismatches:\n", strings.ToUpper(cat))
		for _, m := range o.failures[cat] {
			fmt.Fprintf(&b, "    %s\n", m)
		}
	}
	for _, n := range o.allNotes() {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	b.WriteString("--- definitions:\n")
	for _, d := range c.defDirs {
		b.WriteString(describeDefinitions(d))
	}
	if o.inTable != nil {
		fmt.Fprintf(&b, "--- input table:\n%s", o.inTable)
	}
	if o.want != nil {
		fmt.Fprintf(&b, "--- expected table (oracle):\n%s", o.want)
	}
	if o.got != nil {
		fmt.Fprintf(&b, "--- sprout's table:\n%s", o.got)
	}
	writeRun := func(who string, tr *toolRun) {
		if tr == nil {
			return
		}
		if tr.retried {
			fmt.Fprintf(&b, "--- %s first run (refused):\n%s", who, formatResult(tr.first))
			fmt.Fprintf(&b, "--- %s retry on a copy relocated with sfdisk --relocate gpt-bak-std:\n%s", who, formatResult(tr.final))
		} else {
			fmt.Fprintf(&b, "--- %s:\n%s", who, formatResult(tr.final))
		}
		if tr.relocated {
			fmt.Fprintf(&b, "    (%s left the backup GPT misplaced; expected = its result after sfdisk --relocate gpt-bak-std)\n", who)
		}
	}
	writeRun("oracle", o.oracle)
	writeRun("sprout", o.sprout)
	if o.dryRun != nil && o.failures[catDryRun] != nil {
		fmt.Fprintf(&b, "--- sprout dry run:\n%s", formatResult(*o.dryRun))
	}
	if o.rerunO != nil && o.failures[catRerun] != nil {
		fmt.Fprintf(&b, "--- oracle second run:\n%s--- sprout second run:\n%s", formatResult(*o.rerunO), formatResult(*o.rerunS))
	}
	return b.String()
}

func formatResult(r harness.Result) string {
	return fmt.Sprintf("    $ %s\n    exit %d\n    stdout: %s\n    stderr:\n%s\n", r.CommandLine(), r.ExitCode,
		strings.TrimSpace(r.Stdout), indent(strings.TrimSpace(r.Stderr), "      "))
}

func indent(s, prefix string) string {
	if s == "" {
		return prefix + "(empty)"
	}
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// describeDefinitions lists a definitions directory, drop-ins and symlinks
// included, with file contents.
func describeDefinitions(dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  %s:\n", dir)
	var paths []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			paths = append(paths, p)
		}
		return nil
	})
	sort.Strings(paths)
	for _, p := range paths {
		rel, _ := filepath.Rel(dir, p)
		if target, err := os.Readlink(p); err == nil {
			fmt.Fprintf(&b, "  # %s -> %s\n", rel, target)
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			fmt.Fprintf(&b, "  # %s: %v\n", rel, err)
			continue
		}
		fmt.Fprintf(&b, "  # %s\n%s", rel, indent(string(bytes.TrimRight(data, "\n")), "    "))
		b.WriteString("\n")
	}
	return b.String()
}

// randomizedRE matches the notice that the UUID derived from the seed is
// already in use, so a random one is used instead ("partition N" is the
// 0-based partition number).
var randomizedRE = regexp.MustCompile(`Partition UUID calculated from seed for partition (\d+) already used, reverting to randomized UUID`)

// unnumbered is the partition number 257 and later print for a new
// partition whose UUID they derive before numbering it (uint64 -1).
const unnumbered = "18446744073709551615"

// randomizedEntries returns the GPT entry numbers whose UUID the oracle
// randomized; their UUIDs (and file-system UUIDs) cannot be compared.
// A notice for a partition not yet numbered (257 and later) names no
// entry: it stands for one new entry (in want, not in before) whose UUID
// differs between the oracle and sprout, and for no more than one — so
// each notice excuses at most one difference, and only on a new entry.
func randomizedEntries(stderr string, before, want, got *harness.Table) map[int]bool {
	var m map[int]bool
	mark := func(entry int) {
		if m == nil {
			m = map[int]bool{}
		}
		m[entry] = true
	}
	unnumberedNotices := 0
	for _, sub := range randomizedRE.FindAllStringSubmatch(stderr, -1) {
		if sub[1] == unnumbered {
			unnumberedNotices++
			continue
		}
		n, err := strconv.Atoi(sub[1])
		if err != nil {
			continue
		}
		mark(n + 1)
	}
	if unnumberedNotices == 0 || want == nil || got == nil {
		return m
	}
	old := map[string]bool{}
	if before != nil {
		for _, p := range before.Partitions {
			old[strconv.Itoa(p.Entry)+" "+p.UUID] = true
		}
	}
	gotUUID := map[int]string{}
	for _, p := range got.Partitions {
		gotUUID[p.Entry] = p.UUID
	}
	for _, p := range want.Partitions {
		if unnumberedNotices > 0 && !old[strconv.Itoa(p.Entry)+" "+p.UUID] && !m[p.Entry] && gotUUID[p.Entry] != p.UUID {
			mark(p.Entry)
			unnumberedNotices--
		}
	}
	return m
}

// randomOffsets maps randomized entries to their JSON "offset" values.
func randomOffsets(t *harness.Table, random map[int]bool) map[string]bool {
	if t == nil || len(random) == 0 {
		return nil
	}
	m := map[string]bool{}
	for _, p := range t.Partitions {
		if random[p.Entry] {
			m[strconv.FormatInt(p.StartBytes(t), 10)] = true
		}
	}
	return m
}

// checkUniqueUUIDs: where the oracle fell back to a random UUID, sprout's
// cannot be compared. It must still be all-zero exactly where the oracle's
// is (252 may show a random UUID in JSON without writing it), and unique.
func checkUniqueUUIDs(o *outcome, cat string, want, got *harness.Table, random map[int]bool) {
	const zero = "00000000-0000-0000-0000-000000000000"
	wantUUID := map[int]string{}
	for _, p := range want.Partitions {
		wantUUID[p.Entry] = p.UUID
	}
	seen := map[string]int{}
	for _, p := range got.Partitions {
		if random[p.Entry] && (p.UUID == zero) != (wantUUID[p.Entry] == zero) {
			o.fail(cat, "entry %d: oracle UUID %s, sprout UUID %s (the oracle randomized a colliding UUID)", p.Entry, wantUUID[p.Entry], p.UUID)
		}
		if prev, dup := seen[p.UUID]; dup && p.UUID != zero {
			o.fail(cat, "entries %d and %d share UUID %s", prev, p.Entry, p.UUID)
		}
		seen[p.UUID] = p.Entry
	}
}

func (o *outcome) allNotes() []string {
	notes := slices.Clone(o.notes)
	for _, tr := range []*toolRun{o.oracle, o.sprout} {
		if tr != nil {
			notes = append(notes, tr.notes...)
		}
	}
	return notes
}

// recreated lists the input partitions that the oracle itself erased and
// created anew (a factory reset: its JSON reports "create" at the offset of
// a partition the input had). Their bytes may change, and they are
// compared like new partitions. Only asked when the case requests a reset.
func recreated(c *diffCase, o *outcome) map[int]bool {
	out := map[int]bool{}
	if !slices.Contains(c.args, "--factory-reset=yes") || o.oracle == nil || o.inTable == nil {
		return out
	}
	var rows []struct {
		Offset   uint64 `json:"offset"`
		Activity string `json:"activity"`
	}
	if json.Unmarshal([]byte(o.oracle.final.Stdout), &rows) != nil {
		return out
	}
	for _, p := range o.inTable.Partitions {
		for _, r := range rows {
			if r.Activity == "create" && r.Offset == uint64(p.StartBytes(o.inTable)) {
				out[p.Entry] = true
			}
		}
	}
	return out
}
