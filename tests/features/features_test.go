package features

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sprout-initrd/sprout/tests/harness"
)

var scenarioRoot = filepath.Join("..", "..", "testdata", "features")

// scenario is testdata/features/<name>/scenario.json; paths in it are
// relative to its directory.
type scenario struct {
	Description string `json:"description"`
	// Since is the oldest systemd version that has every key and flag the
	// scenario uses; older oracles do not run it.
	Since int    `json:"since"`
	Size  string `json:"size"`
	// Table is an sfdisk script written to the image first (none: blank).
	Table string `json:"table,omitempty"`
	Seed  string `json:"seed,omitempty"`
	Steps []step `json:"steps"`
}

// step is one run of both tools.
type step struct {
	Name        string   `json:"name"`
	Definitions string   `json:"definitions"`
	Args        []string `json:"args,omitempty"`
	// Root gives each tool a directory of its own as --root=; Files are
	// compared under it. KeepRoot starts from the previous step's
	// directories (the files the first boot wrote), Existing puts files
	// there first (path under the root → file in the scenario directory).
	Root     bool              `json:"root,omitempty"`
	KeepRoot bool              `json:"keep_root,omitempty"`
	Existing map[string]string `json:"existing,omitempty"`
	Files    []string          `json:"files,omitempty"`
	// Independent starts from the base image, not the previous result;
	// Table (an sfdisk script, "-" for none) from a base of its own.
	Independent bool   `json:"independent,omitempty"`
	Table       string `json:"table,omitempty"`
	// Grow enlarges the input (sparsely) before the step: "+10G" adds,
	// "4G" sets the size; the image was dd'ed onto a bigger disk.
	Grow      string     `json:"grow,omitempty"`
	Deviation *deviation `json:"deviation,omitempty"`
	// Probe lists byte offsets (sizes, like "300M") where blkid's TYPE,
	// LABEL and UUID must be the same in both images, whatever the exit
	// codes: what each tool wrote into a future partition's range before
	// it failed (this kernel has no dm-crypt: both stop after formatting
	// the LUKS2 header, when they open the volume).
	Probe []string `json:"probe,omitempty"`
}

// deviation is a deliberate difference from systemd-repart
// (docs/compatibility.md): what sprout does instead. Compare lists what
// is still compared with the oracle ("table", "fs", "files").
type deviation struct {
	Why       string   `json:"why"`
	Exit      int      `json:"exit"`
	Stderr    string   `json:"stderr,omitempty"`
	Unchanged bool     `json:"unchanged,omitempty"` // sprout leaves the image byte-identical
	Absent    []string `json:"absent,omitempty"`    // files sprout does not write
	// Files are sprout's files where they differ from the oracle's (path
	// under the root → file in the scenario directory).
	Files   map[string]string `json:"files,omitempty"`
	Compare []string          `json:"compare,omitempty"`
}

// outcome of one tool on one step.
type outcome struct {
	res   harness.Result
	image string
	root  string
	table *harness.Table
}

type suite struct {
	oracle     chrootOracle
	sprout     string
	mu         sync.Mutex
	steps      int
	equal      int
	differs    int
	failed     int
	notCompare int // the oracle aborted (an assertion in systemd)
	skipped    []string
}

// oracleAborted: systemd-repart stopped on one of its own assertions
// (such as _hashmap_merge's with SupplementFor=, 262): there is nothing
// to compare with.
func oracleAborted(res harness.Result) bool {
	return strings.Contains(res.Stderr, "Assertion '") && strings.Contains(res.Stderr, "Aborting.")
}

// begin checks what the tier needs and returns the suite: Debian
// testing's systemd-repart against the sprout binary under test.
func begin(t *testing.T) *suite {
	harness.RequireRoot(t, "the features tier (systemd-repart formats through loop devices)")
	harness.RequireTools(t, "sfdisk", "blkid", "unshare", "mkfs.ext4", "mkfs.vfat")
	ctx := context.Background()
	o, err := findOracle(ctx, "forky")
	if err != nil {
		harness.Unavailable(t, err.Error(), harness.EnvRequireOracle)
	}
	bin, err := harness.SproutBinary(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &suite{oracle: o, sprout: bin}
}

func TestScenarios(t *testing.T) {
	s := begin(t)
	entries, err := os.ReadDir(scenarioRoot)
	if err != nil {
		t.Fatal(err)
	}
	only := os.Getenv("SPROUT_FEATURES_ONLY")
	t.Run("group", func(t *testing.T) {
		for _, e := range entries {
			if !e.IsDir() || only != "" && e.Name() != only {
				continue
			}
			dir := filepath.Join(scenarioRoot, e.Name())
			t.Run(e.Name(), func(t *testing.T) {
				t.Parallel()
				sc, err := loadScenario(dir)
				if err != nil {
					t.Fatal(err)
				}
				if sc.Since > s.oracle.version {
					s.skip(e.Name())
					t.Skipf("needs systemd %d, the oracle is %d", sc.Since, s.oracle.version)
				}
				s.run(t, dir, sc)
			})
		}
	})
	line := fmt.Sprintf("features: %d steps, %d equal, %d deliberately different, %d failed",
		s.steps, s.equal, s.differs, s.failed)
	if s.notCompare > 0 {
		line += fmt.Sprintf(", %d not compared (the oracle aborted)", s.notCompare)
	}
	if len(s.skipped) > 0 {
		line += fmt.Sprintf("; not run (need a newer oracle): %s", strings.Join(s.skipped, " "))
	}
	line += " — " + s.oracle.note
	t.Log(line)
	fmt.Println(line)
	if path := os.Getenv("SPROUT_DIFF_SUMMARY"); path != "" {
		if err := harness.AppendLine(path, line); err != nil {
			t.Error(err)
		}
	}
}

func (s *suite) skip(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skipped = append(s.skipped, name)
}

func (s *suite) count(dev *deviation, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.steps++
	switch {
	case !ok:
		s.failed++
	case dev != nil:
		s.differs++
	default:
		s.equal++
	}
}

func loadScenario(dir string) (*scenario, error) {
	data, err := os.ReadFile(filepath.Join(dir, "scenario.json"))
	if err != nil {
		return nil, err
	}
	sc := &scenario{}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(sc); err != nil {
		return nil, fmt.Errorf("%s/scenario.json: %w", dir, err)
	}
	if sc.Seed == "" {
		// A seed of its own per scenario: scenarios run at the same time,
		// and a file system UUID one of them has on an attached loop
		// device makes the host's mkfs.btrfs refuse the same UUID in
		// another ("non-unique UUID").
		sum := sha256.Sum256([]byte("sprout features " + filepath.Base(dir)))
		sc.Seed = hex.EncodeToString(sum[:16])
	}
	if sc.Since < 252 || sc.Size == "" || len(sc.Steps) == 0 {
		return nil, fmt.Errorf("%s/scenario.json: since, size and steps are required", dir)
	}
	return sc, nil
}

func (s *suite) run(t *testing.T, dir string, sc *scenario) {
	ctx := context.Background()
	work := t.TempDir()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	size, err := harness.ParseSize(sc.Size)
	if err != nil {
		t.Fatal(err)
	}
	makeBase := func(path, table string) {
		if err := harness.CreateSparse(path, size); err != nil {
			t.Fatal(err)
		}
		if table == "" || table == "-" {
			return
		}
		script, err := os.ReadFile(filepath.Join(abs, table))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := harness.MustSucceed(ctx, "sh", "-c", `sfdisk --quiet --no-reread --no-tell-kernel "$0" <"$1"`, path, filepath.Join(abs, table)); err != nil {
			t.Fatalf("%s: %v (%s)", table, err, script)
		}
	}
	base := filepath.Join(work, "base.img")
	makeBase(base, sc.Table)
	input := base
	var prevRoots [2]string
	for i, st := range sc.Steps {
		name := st.Name
		if name == "" {
			name = fmt.Sprintf("step%d", i+1)
		}
		stepDir := filepath.Join(work, name)
		if err := os.Mkdir(stepDir, 0o755); err != nil {
			t.Fatal(err)
		}
		from := input
		if st.Independent {
			from = base
		}
		if st.Table != "" {
			from = filepath.Join(work, name+"-base.img")
			makeBase(from, st.Table)
		}
		if st.Grow != "" {
			grown := filepath.Join(work, name+"-grown.img")
			if err := harness.CopySparse(from, grown); err != nil {
				t.Fatal(err)
			}
			cur, err := harness.Size(grown)
			if err != nil {
				t.Fatal(err)
			}
			n, err := harness.ParseSize(strings.TrimPrefix(st.Grow, "+"))
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(st.Grow, "+") {
				n += cur
			}
			if err := harness.Resize(grown, n); err != nil {
				t.Fatal(err)
			}
			from = grown
		}
		var oracleOut *outcome
		t.Run(name, func(t *testing.T) {
			var problems []string
			oracleOut, problems = s.step(t, ctx, abs, stepDir, sc, st, from, prevRoots)
			if oracleOut != nil && oracleAborted(oracleOut.res) && st.Deviation == nil {
				s.mu.Lock()
				s.notCompare++
				s.mu.Unlock()
				t.Logf("NOT COMPARED: systemd-repart %d aborted on an assertion:\n%s", s.oracle.version, tail(oracleOut.res.Stderr))
				return
			}
			for _, p := range problems {
				t.Error(p)
			}
			s.count(st.Deviation, len(problems) == 0 && !t.Failed())
		})
		if oracleOut == nil {
			t.Fatalf("step %s has no oracle result to build on", name)
		}
		if oracleOut.res.ExitCode == 0 {
			input = oracleOut.image
		}
		prevRoots = [2]string{filepath.Join(stepDir, "oracle-root"), filepath.Join(stepDir, "sprout-root")}
	}
}

// step runs both tools and compares; it returns the oracle's outcome and
// every difference found (t only fails for a broken setup).
func (s *suite) step(t *testing.T, ctx context.Context, scDir, dir string, sc *scenario, st step, input string, prevRoots [2]string) (oracle *outcome, problems []string) {
	fail := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	// The oracle sees only /tmp: the definitions go there.
	defs := filepath.Join(dir, "defs")
	if err := copyTree(filepath.Join(scDir, st.Definitions), defs); err != nil {
		t.Fatal(err)
	}
	args := []string{"--dry-run=no", "--seed=" + sc.Seed, "--definitions=" + defs, "--json=off", "--pretty=no"}
	args = append(args, st.Args...)
	prepare := func(who string, keep string) (img, root string) {
		img = filepath.Join(dir, who+".img")
		if err := harness.CopySparse(input, img); err != nil {
			t.Fatal(err)
		}
		if st.Root {
			root = filepath.Join(dir, who+"-root")
			if st.KeepRoot && keep != "" {
				if err := copyTree(keep, root); err != nil {
					t.Fatal(err)
				}
			} else if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			for path, src := range st.Existing {
				data, err := os.ReadFile(filepath.Join(scDir, src))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(filepath.Dir(filepath.Join(root, path)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(root, path), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		return img, root
	}
	runOne := func(who string, keep string, dryRun bool) *outcome {
		var img, root string
		var res harness.Result
		for attempt := 1; ; attempt++ {
			img, root = prepare(who, keep)
			a := slices.Clone(args)
			if root != "" {
				a = append(a, "--root="+root)
			}
			if dryRun {
				a[0] = "--dry-run=yes"
			}
			a = append(a, img)
			var err error
			if who == "oracle" {
				res, err = s.oracle.run(ctx, a...)
			} else {
				// sprout behaves as the oracle's version.
				a = append([]string{fmt.Sprintf("--compat=%d", s.oracle.compat)}, a...)
				res, err = harness.Run(ctx, nil, append([]string{s.sprout}, a...)...)
			}
			if err != nil {
				t.Fatalf("%s: %v", who, err)
			}
			// The oracle's failures that come from the machine (loop
			// devices and partition rescans are shared with every test
			// running at the same time) are retried on a fresh copy;
			// sprout's never are.
			if who != "oracle" || res.ExitCode == 0 || attempt == 3 || !transientRE.MatchString(res.Stderr) {
				break
			}
			t.Logf("retried systemd-repart after a transient failure: %s", transientRE.FindString(res.Stderr))
			os.RemoveAll(root)
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		}
		out := &outcome{res: res, image: img, root: root}
		if tb, err := harness.ReadTable(ctx, img); err == nil {
			out.table = tb
		} else if !errors.Is(err, harness.ErrNoTable) {
			t.Fatal(err)
		}
		return out
	}
	// sprout first: the host's mkfs.btrfs refuses a file system UUID that
	// a loop device the oracle just let go of may still show, and both
	// tools derive the same UUIDs.
	ours := runOne("sprout", prevRoots[1], false)
	oracle = runOne("oracle", prevRoots[0], false)
	report := func() string {
		return fmt.Sprintf("\nsystemd-repart %d: %s\nexit %d\n%s\nsprout: %s\nexit %d\n%s",
			s.oracle.version, oracle.res.CommandLine(), oracle.res.ExitCode, tail(oracle.res.Stderr),
			ours.res.CommandLine(), ours.res.ExitCode, tail(ours.res.Stderr))
	}

	compare := map[string]bool{"exit": true, "table": true, "fs": true, "files": true}
	if d := st.Deviation; d != nil {
		compare = map[string]bool{}
		for _, c := range d.Compare {
			compare[c] = true
		}
		if ours.res.ExitCode != d.Exit || !strings.Contains(ours.res.Stderr, d.Stderr) {
			fail("deviation (%s): sprout should exit %d saying %q%s", d.Why, d.Exit, d.Stderr, report())
		}
		if d.Unchanged {
			if same, err := sameContent(input, ours.image); err != nil || !same {
				fail("deviation (%s): sprout changed the image (%v)", d.Why, err)
			}
		}
		for path, want := range d.Files {
			data, err := os.ReadFile(filepath.Join(scDir, want))
			if err != nil {
				t.Fatal(err)
			}
			if got := readOrAbsent(filepath.Join(ours.root, path)); got != string(data) {
				fail("deviation (%s): sprout's %s:\n%s\nwant (%s):\n%s", d.Why, path, got, want, data)
			}
		}
		for _, f := range d.Absent {
			if _, err := os.Stat(filepath.Join(ours.root, f)); !errors.Is(err, fs.ErrNotExist) {
				fail("deviation (%s): sprout wrote %s (%v)", d.Why, f, err)
			}
		}
	}
	if compare["exit"] && oracle.res.ExitCode != ours.res.ExitCode {
		fail("exit codes differ%s", report())
	}
	if st.Deviation == nil && oracle.res.ExitCode != 0 && ours.res.ExitCode == oracle.res.ExitCode {
		// Refused by both: for one class of reason (tests/harness/refusal.go);
		// a deviation says itself why sprout refuses otherwise.
		sc, sl := harness.SproutRefusal(ours.res.Stderr)
		rc, rl := harness.RepartRefusal(oracle.res.Stderr)
		if sc == harness.RefusedUnknown || sc != rc {
			fail("both refuse, for reasons of different or unknown classes: sprout %q (%q), systemd-repart %q (%q)%s", sc, sl, rc, rl, report())
		}
	}
	bothOK := oracle.res.ExitCode == 0 && ours.res.ExitCode == 0
	// When a UUID derived from the seed is taken, both tools fall back to
	// a random one: the new partitions' UUIDs, and what derives from them
	// (file system UUIDs, the generated files), cannot be compared.
	randomized := strings.Contains(oracle.res.Stderr, "reverting to randomized UUID")
	random := map[int]bool{}
	if randomized && oracle.table != nil {
		old, _ := harness.ReadTable(ctx, input)
		for _, p := range oracle.table.Partitions {
			if old == nil || !slices.ContainsFunc(old.Partitions, func(q harness.Partition) bool { return q.Entry == p.Entry }) {
				random[p.Entry] = true
			}
		}
	}
	if compare["table"] {
		switch {
		case bothOK && (oracle.table == nil) != (ours.table == nil):
			fail("only one tool left a partition table%s", report())
		case bothOK && oracle.table != nil:
			if d := harness.DiffExcept(oracle.table, ours.table, random); len(d) > 0 {
				fail("tables differ:\n  %s%s", strings.Join(d, "\n  "), report())
			}
		case oracle.res.ExitCode != 0 && ours.res.ExitCode != 0:
			if same, err := sameTable(ctx, input, ours.image); err != nil || !same {
				fail("sprout refused but changed the table (%v)%s", err, report())
			}
		}
	}
	if compare["fs"] && bothOK && oracle.table != nil && ours.table != nil && len(harness.DiffExcept(oracle.table, ours.table, random)) == 0 {
		// Every partition, the ones that existed too (a partition that
		// is not created must not be touched either).
		for _, p := range oracle.table.Partitions {
			w, err1 := harness.Probe(ctx, oracle.image, p.StartBytes(oracle.table), p.SizeBytes(oracle.table))
			g, err2 := harness.Probe(ctx, ours.image, p.StartBytes(oracle.table), p.SizeBytes(oracle.table))
			if err := errors.Join(err1, err2); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"TYPE", "LABEL", "UUID", "VERSION"} {
				if w[k] != g[k] && !(k == "UUID" && random[p.Entry]) {
					fail("partition %d (%s): file system %s: systemd-repart %q, sprout %q", p.Entry, p.Name, k, w[k], g[k])
				}
			}
		}
	}
	for _, off := range st.Probe {
		n, err := harness.ParseSize(off)
		if err != nil {
			t.Fatal(err)
		}
		w, err1 := harness.Probe(ctx, oracle.image, n, 64<<20)
		g, err2 := harness.Probe(ctx, ours.image, n, 64<<20)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		if w["TYPE"] == "" {
			fail("at %s systemd-repart wrote nothing blkid knows: the probe checks nothing", off)
		}
		for _, k := range []string{"TYPE", "LABEL", "UUID", "VERSION"} {
			if w[k] != g[k] {
				fail("at %s: %s: systemd-repart %q, sprout %q", off, k, w[k], g[k])
			}
		}
	}
	if compare["files"] && !randomized {
		for _, f := range st.Files {
			w, g := readOrAbsent(filepath.Join(oracle.root, f)), readOrAbsent(filepath.Join(ours.root, f))
			if w != g {
				fail("%s differs:\n--- systemd-repart %d\n%s\n--- sprout\n%s%s", f, s.oracle.version, w, g, report())
			}
		}
	}
	// The dry run writes nothing: not the image, not a file.
	dry := runOne("sprout-dry", prevRoots[1], true)
	if same, err := sameContent(input, dry.image); err != nil || !same {
		fail("sprout --dry-run=yes changed the image (%v)", err)
	}
	if dry.root != "" {
		before := map[string]string{}
		if st.KeepRoot && prevRoots[1] != "" {
			before = treeFiles(prevRoots[1])
		}
		for path, src := range st.Existing {
			data, _ := os.ReadFile(filepath.Join(scDir, src))
			before[path] = string(data)
		}
		if after := treeFiles(dry.root); !maps.Equal(before, after) {
			fail("sprout --dry-run=yes wrote files: before %v, after %v", slices.Sorted(maps.Keys(before)), slices.Sorted(maps.Keys(after)))
		}
	}
	return oracle, problems
}

// transientRE matches failures caused by the machine rather than the
// disk (as in tests/differential).
var transientRE = regexp.MustCompile(`Failed to make loopback device|Failed to reread partition table|Device or resource busy|Resource temporarily unavailable`)

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 25 {
		lines = append([]string{"…"}, lines[len(lines)-25:]...)
	}
	return "  " + strings.Join(lines, "\n  ")
}

func readOrAbsent(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(absent)"
	}
	return string(data)
}

func sameContent(a, b string) (bool, error) {
	ha, err := harness.ContentHash(a)
	if err != nil {
		return false, err
	}
	hb, err := harness.ContentHash(b)
	return ha == hb, err
}

func sameTable(ctx context.Context, a, b string) (bool, error) {
	ta, errA := harness.ReadTable(ctx, a)
	tb, errB := harness.ReadTable(ctx, b)
	if errors.Is(errA, harness.ErrNoTable) && errors.Is(errB, harness.ErrNoTable) {
		return true, nil
	}
	if err := errors.Join(errA, errB); err != nil {
		return false, err
	}
	return len(harness.Diff(ta, tb)) == 0, nil
}

// treeFiles maps every regular file under dir (relative path) to its
// content.
func treeFiles(dir string) map[string]string {
	out := map[string]string{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			data, _ := os.ReadFile(path)
			rel, _ := filepath.Rel(dir, path)
			out[rel] = string(data)
		}
		return nil
	})
	return out
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}
