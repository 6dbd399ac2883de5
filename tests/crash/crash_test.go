package crash

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sprout-initrd/sprout/tests/harness"
)

const (
	envJobs     = "SPROUT_CRASH_JOBS"
	envScenario = "SPROUT_CRASH_SCENARIO"
	envPoints   = "SPROUT_CRASH_POINTS"
	envKeep     = "SPROUT_CRASH_KEEP"
	envDir      = "SPROUT_CRASH_DIR"
	envSummary  = "SPROUT_CRASH_SUMMARY"
	defaultJobs = 4
)

// requiredTools are the programs the tier runs (besides sprout and what
// sprout runs: mkfs.ext4, mkfs.vfat).
var requiredTools = []string{"losetup", "partx", "sfdisk", "sgdisk", "blkid", "e2fsck", "fsck.vfat", "mkfs.ext4", "mkfs.vfat"}

// suite is prepared once by TestMain.
type suite struct {
	sprout   string
	jobs     int
	keep     string
	only     string
	points   func(k int) bool
	setupErr error
	summary  []string
	mu       sync.Mutex
}

var theSuite = &suite{}

func TestMain(m *testing.M) {
	if os.Getenv(envGuest) != "" {
		guestMain() // PID 1 of the dm-log-writes tier's VM
	}
	harness.TraceeMain()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	s := theSuite
	scratch, err := os.MkdirTemp("", "sprout-crash-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash:", err)
		return 1
	}
	defer os.RemoveAll(scratch)
	s.keep, s.only = os.Getenv(envKeep), os.Getenv(envScenario)
	if s.jobs, err = harness.EnvInt(envJobs, defaultJobs); err != nil || s.jobs < 1 {
		s.setupErr = fmt.Errorf("bad %s: %v", envJobs, err)
	}
	if s.points, err = parsePoints(os.Getenv(envPoints)); err != nil {
		s.setupErr = err
	}
	if s.setupErr == nil && len(harness.MissingTools(requiredTools...)) == 0 {
		s.sprout, s.setupErr = harness.SproutBinary(context.Background(), scratch)
	}
	code := m.Run()
	for _, line := range s.summary {
		fmt.Println(line)
	}
	// go test shows a passing package's output only with -v; make reads
	// the summary from a file instead.
	if path := os.Getenv(envSummary); path != "" {
		if err := os.WriteFile(path, []byte(strings.Join(s.summary, "\n")+"\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "crash:", err)
			return 1
		}
	}
	return code
}

// parsePoints parses "1-20,57" into a filter; "" selects every point.
func parsePoints(spec string) (func(int) bool, error) {
	if spec == "" {
		return func(int) bool { return true }, nil
	}
	type span struct{ lo, hi int }
	var spans []span
	for _, part := range strings.Split(spec, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 1 || b < a {
			return nil, fmt.Errorf("%s=%q: want e.g. 1-20,57", envPoints, spec)
		}
		spans = append(spans, span{a, b})
	}
	return func(k int) bool {
		for _, s := range spans {
			if k >= s.lo && k <= s.hi {
				return true
			}
		}
		return false
	}, nil
}

func (s *suite) report(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.summary = append(s.summary, line)
}

func TestCrashPoints(t *testing.T) {
	harness.RequireRoot(t, "the crash-point tier (loop devices, ptrace of mkfs)")
	harness.RequireTools(t, requiredTools...)
	s := theSuite
	if s.setupErr != nil {
		t.Fatal(s.setupErr)
	}
	scenarios := s.scenarios(t)
	for _, sc := range scenarios {
		t.Run(sc.Name, func(t *testing.T) { s.runScenario(t, sc) })
	}
	if len(scenarios) == 0 {
		t.Fatalf("no scenario ran (%s=%q)", envScenario, s.only)
	}
}

// scenarios loads the scenarios under scenarioRoot, only the one named by
// envScenario when it is set.
func (s *suite) scenarios(t *testing.T) []*scenario {
	entries, err := os.ReadDir(scenarioRoot)
	if err != nil {
		t.Fatal(err)
	}
	var out []*scenario
	for _, e := range entries {
		if !e.IsDir() || (s.only != "" && e.Name() != s.only) {
			continue
		}
		sc, err := loadScenario(filepath.Join(scenarioRoot, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sc)
	}
	return out
}

// mode is how a crash point is made.
type mode int

const (
	powerCut   mode = iota // the whole tree dies before the k-th disk write
	mkfsKilled             // the mkfs making the k-th mkfs write dies; sprout runs on
)

func (m mode) String() string {
	if m == powerCut {
		return "power cut"
	}
	return "mkfs killed"
}

// prepare builds sc's base image in a fresh work directory and makes the
// uninterrupted reference run on a copy.
func (s *suite) prepare(ctx context.Context, t *testing.T, sc *scenario) *reference {
	work, err := workDir(t)
	if err != nil {
		t.Fatal(err)
	}
	base, err := buildBase(ctx, sc, work)
	if err != nil {
		t.Fatalf("build base image: %v", err)
	}
	ref, err := s.reference(ctx, sc, base, work)
	if err != nil {
		t.Fatalf("uninterrupted run: %v", err)
	}
	return ref
}

func (s *suite) runScenario(t *testing.T, sc *scenario) {
	ctx := context.Background()
	start := time.Now()
	ref := s.prepare(ctx, t, sc)
	t.Logf("uninterrupted run: %d disk writes (%d by sprout, %d by mkfs), the relocated old table (as sfdisk makes it) is on the disk after write %d; sgdisk problems: old %q, relocated %q, new %q",
		len(ref.writes), len(ref.writes)-ref.mkfsWrites, ref.mkfsWrites, ref.relocationEnd+1, ref.oldSgdisk, ref.relocatedSgdisk, ref.newSgdisk)

	for _, md := range []mode{powerCut, mkfsKilled} {
		total := len(ref.points[md])
		outs := s.runPoints(ctx, ref, md, total)
		what := fmt.Sprintf("power cut before each of its %d disk writes", total)
		if md == mkfsKilled {
			what = fmt.Sprintf("mkfs killed at each of its %d writes", total)
		}
		s.summarize(t, sc, what, md.String(), outs, total)
	}
	t.Logf("%s took %s (summed over workers: %s)", sc.Name, time.Since(start).Round(time.Second), ref.tm.String())
}

// summarize logs the crash states a series of crash points left, reports
// "N crash points, N converged" (printed at the end of the run) and fails
// t with the problems of the first failing points.
func (s *suite) summarize(t *testing.T, sc *scenario, what, kind string, outs []outcome, total int) {
	converged := 0
	states := map[string]int{}
	for _, o := range outs {
		if len(o.problems) == 0 {
			converged++
		}
		states[o.state]++
	}
	var hist []string
	for st, n := range states {
		hist = append(hist, fmt.Sprintf("%4d × %s", n, st))
	}
	sort.Strings(hist)
	t.Logf("%s: states left by the crash:\n  %s", kind, strings.Join(hist, "\n  "))
	line := fmt.Sprintf("crash: %s (%d-byte sectors, grown by %s): %s: %d crash points, %d converged",
		sc.Name, sc.SectorSize, strings.TrimPrefix(sc.Grow, "+"), what, len(outs), converged)
	if len(outs) != total {
		line += fmt.Sprintf(" (%s selected %d of %d)", envPoints, len(outs), total)
	}
	t.Log(line)
	s.report(line)
	shown := 0
	for _, o := range outs {
		if len(o.problems) > 0 && shown < 10 {
			shown++
			where := fmt.Sprintf("point %d", o.k)
			if o.killed != nil {
				where += fmt.Sprintf(" (before %v)", o.killed)
			}
			t.Errorf("%s at %s:\n  %s", kind, where, strings.Join(o.problems, "\n  "))
		}
	}
}

// timings adds up where the tier's time goes, per phase, for the log.
type timings struct {
	mu sync.Mutex
	d  map[string]time.Duration
}

// since adds the time since start to phase and returns now.
func (tm *timings) since(phase string, start time.Time) time.Time {
	now := time.Now()
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if tm.d == nil {
		tm.d = map[string]time.Duration{}
	}
	tm.d[phase] += now.Sub(start)
	return now
}

func (tm *timings) String() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	var parts []string
	for p, d := range tm.d {
		parts = append(parts, fmt.Sprintf("%s %s", p, d.Round(time.Second)))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// ending says how a traced run ended.
func ending(r *harness.TraceResult) string {
	if r.Signal != 0 {
		return "killed by " + r.Signal.String()
	}
	return fmt.Sprintf("exit %d", r.ExitCode)
}

// workDir is where the scenario's images live: $SPROUT_CRASH_DIR, else
// /dev/shm when it is a tmpfs, else the test's temporary directory. On a
// disk-backed file system every fsync of sprout and mkfs (through the loop
// devices) waits for the host's disk, and parallel crash points queue up
// behind each other; a tmpfs makes them free. Nothing is lost by it: a
// crash point is a killed process tree, not lost cached writes, so the
// point of an fsync is not tested here either way.
func workDir(t *testing.T) (string, error) {
	parent := os.Getenv(envDir)
	if parent == "" {
		var fs syscall.Statfs_t
		if err := syscall.Statfs("/dev/shm", &fs); err == nil && fs.Type == tmpfsMagic {
			parent = "/dev/shm"
		}
	}
	if parent == "" {
		return t.TempDir(), nil
	}
	dir, err := os.MkdirTemp(parent, "sprout-crash-")
	if err != nil {
		return "", err
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir, nil
}

const tmpfsMagic = 0x01021994

// outcome is what one crash point showed.
type outcome struct {
	k        int
	killed   *harness.DiskWrite
	state    string
	problems []string
}

func (s *suite) runPoints(ctx context.Context, ref *reference, md mode, total int) []outcome {
	var ks []int
	for k := 1; k <= total; k++ {
		if s.points(k) {
			ks = append(ks, k)
		}
	}
	outs := make([]outcome, len(ks))
	next := make(chan int)
	var wg sync.WaitGroup
	for range s.jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				outs[i] = s.crashPoint(ctx, ref, md, ks[i])
			}
		}()
	}
	for i := range ks {
		next <- i
	}
	close(next)
	wg.Wait()
	return outs
}

// sproutArgv is the run under test (with --factory-reset=yes when the
// scenario resets), as the boot that crashes and the next one run it.
func (s *suite) sproutArgv(ref *reference, dev string) []string {
	argv := s.settledArgv(ref, dev)
	if len(ref.sc.FactoryReset) > 0 {
		argv = append(argv[:len(argv)-1], "--factory-reset=yes", dev)
	}
	return argv
}

// settledArgv is the run of a later boot, which must write nothing: a
// factory reset is asked for once (252 and sprout remove the EFI
// variable that asked), so it is not repeated.
func (s *suite) settledArgv(ref *reference, dev string) []string {
	return []string{s.sprout, "--dry-run=no", "--definitions=" + ref.defs, "--seed=" + ref.sc.Seed, dev}
}

// crashPoint makes one crash — before the write that was the k-th of the
// mode's writes in the uninterrupted run — and checks what it left and how
// the next run converges.
func (s *suite) crashPoint(ctx context.Context, ref *reference, md mode, k int) (o outcome) {
	o.k = k
	o.state = "(not reached)"
	fail := func(format string, args ...any) {
		o.problems = append(o.problems, fmt.Sprintf(format, args...))
	}
	dir, err := os.MkdirTemp(ref.work, fmt.Sprintf("point-%d-%d-", md, k))
	if err != nil {
		fail("%v", err)
		return o
	}
	img := filepath.Join(dir, "disk.img")
	defer func() {
		if len(o.problems) > 0 && s.keep != "" {
			dst := filepath.Join(s.keep, fmt.Sprintf("%s-%s-%d.img", ref.sc.Name, strings.ReplaceAll(md.String(), " ", "-"), k))
			if err := harness.CopySparse(img, dst); err == nil {
				o.problems = append(o.problems, "disk image kept as "+dst)
			}
		}
		os.RemoveAll(dir)
	}()
	at := time.Now()
	if err := harness.CopySparse(ref.base, img); err != nil {
		fail("%v", err)
		return o
	}
	ss := ref.sc.SectorSize
	at = ref.tm.since("copy", at)

	// 1. The run that crashes.
	m, err := boot(ctx, img, ss)
	if err != nil {
		fail("boot: %v", err)
		return o
	}
	at = ref.tm.since("boot", at)
	target := ref.points[md][k-1]
	spec := harness.TraceSpec{
		Argv: s.sproutArgv(ref, m.loop.Dev), Image: img, Timeout: 2 * time.Minute,
		KillAt: target.Occurrence, Counts: func(w harness.DiskWrite, _ int) bool { return target.matches(w) },
		KillWriterOnly: md == mkfsKilled,
	}
	res, err := harness.TraceWrites(ctx, spec)
	at = ref.tm.since("crashed run", at)
	if perr := m.powerOff(ctx); perr != nil {
		fail("after the crashed run: %v", perr)
	}
	at = ref.tm.since("power off", at)
	if err != nil {
		fail("crashed run: %v", err)
		return o
	}
	o.killed = res.Killed
	whole := "" // the known table the disk must be as a whole; "" any valid state
	if res.Killed == nil {
		fail("the run ended (%s) after %d disk writes without making write %v", ending(res), len(res.Writes), target)
		return o
	}
	if len(res.Untraceable) > 0 {
		fail("writes the tracer cannot follow: %v", res.Untraceable)
	}
	for _, p := range writesInto(res.Writes, ref.existingRegions()) {
		fail("crashed run: %s", p)
	}
	switch md {
	case powerCut:
		if res.Signal != syscall.SIGKILL {
			fail("sprout ended with %s; want SIGKILL", ending(res))
		}
	case mkfsKilled:
		// sprout writes the relocated old table before any mkfs runs,
		// and no table after a failed mkfs: the disk must be the old one
		// or, once sprout wrote its primary header, the relocated one.
		whole = tableOld
		for _, w := range res.Writes {
			if w.PID == res.PID && !w.AfterKill && w.Offset < 2*ss && w.End() > ss {
				whole = tableRelocated
			}
		}
		if res.Signal != 0 || res.ExitCode == 0 {
			fail("sprout did not fail after its mkfs was killed (%s)\n%s", ending(res), lastLines(res.Stderr, 8))
		}
		var late []harness.DiskWrite
		for _, w := range res.Writes {
			if w.AfterKill {
				late = append(late, w)
			}
		}
		for _, p := range writesInto(late, ref.tableAreas) {
			fail("after mkfs was killed: %s", p)
		}
	}

	ref.tm.since("check crashed run", at)
	o.state = s.examine(ctx, ref, img, whole, fail)
	return o
}

// examine checks the disk image a crash left — the GPT (rules 1–5), the
// bytes of the existing partitions, what the tools make of it — then
// boots it, runs sprout to completion, and checks that the result is the
// uninterrupted run's and that one more run writes nothing. whole names
// the known table ("old" or "relocated") that the disk must hold, both
// copies and the MBR byte for byte, when the crash cannot have left it
// between two tables (a killed mkfs); "" accepts any valid state. It
// returns the crash state, for the histogram.
func (s *suite) examine(ctx context.Context, ref *reference, img string, whole string, fail func(string, ...any)) string {
	ss := ref.sc.SectorSize
	at := time.Now()
	crashed, err := readDiskGPT(img, ss, ref.oldBackupLBA)
	if err != nil {
		fail("%v", err)
		return "(unreadable)"
	}
	verdict := ref.known.judge(crashed)
	for _, v := range verdict.Violations {
		fail("invalid GPT after the crash: %s", v)
	}
	if whole != "" {
		want := ref.known.Old
		if whole == tableRelocated {
			want = ref.known.Relocated
		}
		if d := sameTable(want, crashed); len(d) > 0 {
			fail("after mkfs failed the disk is not the %s one: %s (%s)", whole, strings.Join(d, "; "), verdict.State)
		}
	}
	for _, p := range ref.changedExisting(img) {
		fail("after the crash: %s", p)
	}
	if oldEntriesReadable(ref.known, crashed) {
		// A factory reset must not touch a partition it erases while a
		// table copy a reader may use still points at it.
		for _, p := range ref.changedErased(img) {
			fail("after the crash, with the old table still in LBA 1 or the last LBA: %s", p)
		}
	}
	if verdict.AnyNew {
		// Rule 4: an entry never points at a half-made file system.
		for _, np := range ref.newParts {
			if err := checkFSInImage(ctx, img, np.Off, np.Size, ss, np.Format, nil); err != nil {
				fail("the crashed disk has the new table, but partition %q is not complete: %v", np.Name, err)
			}
		}
	}
	at = ref.tm.since("check crashed disk", at)

	// The next boot: the tools' view, the run that must converge, and
	// one more that must write nothing.
	m, err := boot(ctx, img, ss)
	if err != nil {
		fail("boot after the crash: %v", err)
		return verdict.State
	}
	at = ref.tm.since("boot", at)
	s.afterCrash(ctx, ref, m, crashed, verdict, fail)
	at = time.Now()
	if err := m.powerOff(ctx); err != nil {
		fail("after the converging run: %v", err)
	}
	at = ref.tm.since("power off", at)
	defer ref.tm.since("check final disk", at)
	final, err := readDiskGPT(img, ss, ref.oldBackupLBA)
	if err != nil {
		fail("%v", err)
		return verdict.State
	}
	for _, d := range sameTable(ref.known.New, final) {
		fail("final GPT differs from an uninterrupted run's: %s", d)
	}
	for _, p := range ref.changedExisting(img) {
		fail("after the converging run: %s", p)
	}
	return verdict.State
}

// afterCrash checks the booted crashed disk with the tools, runs sprout
// to completion and checks the result.
func (s *suite) afterCrash(ctx context.Context, ref *reference, m *machine, crashed *diskGPT, verdict gptVerdict, fail func(string, ...any)) {
	dev := m.loop.Dev
	at := time.Now()
	for _, p := range ref.toolsOnCrashed(ctx, m, crashed, verdict) {
		fail("%s", p)
	}
	at = ref.tm.since("tools on crashed disk", at)

	res, err := harness.TraceWrites(ctx, harness.TraceSpec{Argv: s.sproutArgv(ref, dev), Image: m.img, Timeout: 2 * time.Minute})
	at = ref.tm.since("converging run", at)
	if err != nil {
		fail("converging run: %v", err)
		return
	}
	if res.ExitCode != 0 {
		fail("converging run: %s:\n%s", ending(res), lastLines(res.Stderr, 10))
		return
	}
	for _, p := range writesInto(res.Writes, ref.existingRegions()) {
		fail("converging run: %s", p)
	}
	if tbl, err := harness.ReadTable(ctx, dev); err != nil {
		fail("sfdisk after the converging run: %v", err)
	} else if d := harness.Diff(ref.newTable, tbl); len(d) > 0 {
		fail("table after the converging run differs from an uninterrupted run's: %v", d)
	}
	if err := checkKernelView(dev, ref.newTable); err != nil {
		fail("after the converging run: %v", err)
	}
	at = ref.tm.since("tools on final disk", at)
	again, err := harness.TraceWrites(ctx, harness.TraceSpec{Argv: s.settledArgv(ref, dev), Image: m.img, Timeout: 2 * time.Minute})
	at = ref.tm.since("no-op run", at)
	switch {
	case err != nil:
		fail("run after convergence: %v", err)
	case again.ExitCode != 0 || len(again.Writes) > 0:
		fail("run after convergence: exit %d, %d disk writes (want 0, none): %v", again.ExitCode, len(again.Writes), again.Writes)
	}
	for _, np := range ref.newParts {
		node := fmt.Sprintf("%sp%d", dev, np.Entry)
		if err := checkFS(ctx, node, np.Size, np.Format, np.Probe); err != nil {
			fail("partition %q after the converging run: %v", np.Name, err)
		}
	}
	ref.tm.since("fsck", at)
}

// oldEntriesReadable reports whether the primary copy or the backup in the
// last LBA — the copies readers use — is still the old table intact.
func oldEntriesReadable(k knownTables, d *diskGPT) bool {
	for _, c := range []harness.GPTCopy{d.Primary, d.AtEnd} {
		if c.Intact() && k.versionOf(c) == tableOld {
			return true
		}
	}
	return false
}
