package differential

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/tests/harness"
)

// Environment variables of this tier (the harness adds SPROUT_BIN,
// SPROUT_REQUIRE_TOOLS and SPROUT_REQUIRE_ROOT).
const (
	envSeed     = "SPROUT_DIFF_SEED"      // master seed of the random cases ("random" = time based)
	envCases    = "SPROUT_DIFF_CASES"     // number of random cases
	envCaseSeed = "SPROUT_DIFF_CASE_SEED" // run only the random case with this case seed
	envKeep     = "SPROUT_DIFF_KEEP"      // directory that receives failing cases
	envJobs     = "SPROUT_DIFF_JOBS"      // cases run at the same time
	envSummary  = "SPROUT_DIFF_SUMMARY"   // file the one-line summary is appended to
)

const (
	// defaultCases is per oracle: four oracles share what one had.
	defaultCases = 75
	defaultJobs  = 3
)

// newestCompat is the newest systemd version whose behaviour sprout has
// (--compat=); an oracle newer than that is compared under it, and the
// summary says so.
const newestCompat = int(compat.Newest)

// requiredTools are the external programs every case needs.
var requiredTools = []string{harness.HostRepart, "sfdisk", "blkid", "mkfs.ext4", "mkfs.vfat", "mkswap"}

// suite is what TestMain prepares once and every test reads; forOracle
// gives the copy a test runs with one oracle.
type suite struct {
	oracle   harness.Oracle // the systemd-repart of this run (a fake one only in the harness's own tests)
	compat   int            // sprout runs with --compat=compat (0: no flag; the self-test and fakes)
	oracles  []harness.Oracle
	notes    []string // oracles left out (only without SPROUT_REQUIRE_ORACLE=1)
	sprout   string   // binary under test
	selfTest bool     // sprout is the oracle itself (harness self-test)
	scratch  string   // per-run directory for cached base images
	keep     string   // SPROUT_DIFF_KEEP
	jobs     chan struct{}
	setupErr error // reported by every test instead of running
	summary  *summary
	// summaries has one summary per oracle, in the order of oracles.
	summaries []*summary
}

// theSuite is written once by TestMain before any test runs.
var theSuite *suite

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	s := &suite{summary: &summary{}}
	theSuite = s
	scratch, err := os.MkdirTemp("", "sprout-differential-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "differential:", err)
		return 1
	}
	defer os.RemoveAll(scratch)
	s.scratch = scratch
	s.keep = os.Getenv(envKeep)
	jobs, err := harness.EnvInt(envJobs, defaultJobs)
	if err != nil || jobs < 1 {
		s.setupErr = fmt.Errorf("bad %s: %v", envJobs, err)
	}
	s.jobs = make(chan struct{}, max(jobs, 1))
	if len(harness.MissingTools(requiredTools...)) == 0 && s.setupErr == nil {
		ctx := context.Background()
		bin, err := harness.SproutBinary(ctx, filepath.Join(scratch, "bin"))
		if err == nil {
			s.sprout = bin
			s.selfTest = harness.SameFile(bin, harness.HostRepart)
		} else {
			s.setupErr = err
		}
		s.oracles, s.notes, err = harness.OracleSelection(ctx)
		if s.selfTest {
			// The harness's self-test compares 252 with itself.
			var host harness.Oracle
			host, err = harness.HostOracle(ctx)
			s.oracles = []harness.Oracle{host}
		}
		if err != nil && s.setupErr == nil {
			s.setupErr = err
		}
		for range s.oracles {
			s.summaries = append(s.summaries, &summary{})
		}
		if len(s.oracles) > 0 {
			s.oracle, s.summary = s.oracles[0], s.summaries[0]
		}
	}
	code := m.Run()
	var lines []string
	for _, n := range s.notes {
		lines = append(lines, "differential: "+n)
	}
	for i, o := range s.oracles {
		if line := s.summaries[i].String(); line != "" {
			lines = append(lines, fmt.Sprintf("%s — %s", line, s.forOracle(o).compatNote()))
		}
	}
	for _, line := range lines {
		// go test shows a passing package's output only with -v, so the
		// lines can also go to a file (make test prints it).
		fmt.Println(line)
		if path := os.Getenv(envSummary); path != "" {
			if err := harness.AppendLine(path, line); err != nil {
				fmt.Fprintln(os.Stderr, "differential:", err)
				return 1
			}
		}
	}
	return code
}

// forOracle is s set up to compare sprout with o: sprout runs with the
// --compat= version o's behaviour is supported under.
func (s *suite) forOracle(o harness.Oracle) *suite {
	c := *s
	c.oracle = o
	for i, x := range s.oracles {
		if x.Name == o.Name {
			c.summary = s.summaries[i]
		}
	}
	c.compat = 0
	if !s.selfTest {
		c.compat = o.Compat(newestCompat)
	}
	return &c
}

func (s *suite) compatNote() string {
	if s.selfTest {
		return fmt.Sprintf("self-test: %s compared with itself", s.oracle)
	}
	return s.oracle.CompatNote(newestCompat)
}

// eachOracle runs fn as one subtest per oracle, named by its version
// ("252", "257", "262"): go test -run 'TestRandom/262/' runs one.
func (s *suite) eachOracle(t *testing.T, fn func(t *testing.T, s *suite)) {
	for _, o := range s.oracles {
		so := s.forOracle(o)
		t.Run(strconv.Itoa(o.Version), func(t *testing.T) {
			t.Log(so.compatNote())
			fn(t, so)
		})
	}
}

// begin is called first by every test: it skips or fails on a missing
// tool or privilege, fails on a setup error, and returns the suite.
func begin(t *testing.T) *suite {
	t.Helper()
	harness.RequireTools(t, requiredTools...)
	harness.RequireRoot(t, "the differential tier (systemd-repart formats through loop devices)")
	s := theSuite
	if s.setupErr != nil {
		t.Fatal(s.setupErr)
	}
	return s
}

// acquire limits how many cases run their tools at once.
func (s *suite) acquire(t *testing.T) {
	s.jobs <- struct{}{}
	t.Cleanup(func() { <-s.jobs })
}

// summary counts case outcomes for the one-line report at the end.
type summary struct {
	mu                                                sync.Mutex
	cases, equal, refused, relocated, failed, asserts int
	byCategory                                        map[string]int
	fatGeometry                                       int // cases whose vfat geometry differs (fatKnown; not failed)
	deepFS                                            int // file systems compared beyond blkid, and the time it took
	deepFSTime                                        time.Duration
}

func (s *summary) add(o *outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cases++
	if o.fatGeometry {
		s.fatGeometry++
	}
	s.deepFS += o.deepFS
	s.deepFSTime += o.deepFSTime
	switch {
	case o.failed():
		s.failed++
		if s.byCategory == nil {
			s.byCategory = map[string]int{}
		}
		for _, c := range o.categories() {
			s.byCategory[c]++
		}
	case o.kind == kindOracleAssert:
		s.asserts++
	case o.kind == kindRefused:
		s.refused++
	case o.kind == kindRelocated:
		s.relocated++
	default:
		s.equal++
	}
}

func (s *summary) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cases == 0 {
		return ""
	}
	line := fmt.Sprintf("differential: %d cases, %d equal, %d refused by both, %d relocated-then-equal, %d failed",
		s.cases, s.equal, s.refused, s.relocated, s.failed)
	if s.asserts > 0 {
		line += fmt.Sprintf(", %d NOT COMPARED: the oracle aborted on an assertion (an upstream bug; -v shows which)", s.asserts)
	}
	if len(s.byCategory) > 0 {
		line += fmt.Sprintf(" %v", s.byCategory)
	}
	line += fmt.Sprintf("; %d file systems compared beyond blkid (dumpe2fs, boot sector and fsck.fat, swap header) in %s", s.deepFS, s.deepFSTime.Round(100*time.Millisecond))
	if s.fatGeometry > 0 {
		line += fmt.Sprintf("; KNOWN DIFFERENCE, not failed: the vfat geometry (%s) differs in %d cases (262 formats vfat on a block device in place: hidden sectors, track-rounded size; sprout through a loop device, as 252-257; docs/compatibility.md)",
			strings.Join(fatKnown, ", "), s.fatGeometry)
	}
	return line
}
