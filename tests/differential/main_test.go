package differential

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

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
	defaultCases = 300
	defaultJobs  = 3
)

// requiredTools are the external programs every case needs.
var requiredTools = []string{harness.HostRepart, "sfdisk", "blkid", "mkfs.ext4", "mkfs.vfat", "mkswap"}

// suite is what TestMain prepares once and every test reads.
type suite struct {
	oracle   string // systemd-repart 252 (a fake one only in the harness's own tests)
	sprout   string // binary under test
	selfTest bool   // sprout is the oracle itself (harness self-test)
	scratch  string // per-run directory for cached base images
	keep     string // SPROUT_DIFF_KEEP
	jobs     chan struct{}
	setupErr error // reported by every test instead of running
	summary  *summary
}

// theSuite is written once by TestMain before any test runs.
var theSuite *suite

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	s := &suite{oracle: harness.HostRepart, summary: &summary{}}
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
		bin, err := harness.SproutBinary(context.Background(), filepath.Join(scratch, "bin"))
		if err == nil {
			s.sprout = bin
			s.selfTest = harness.SameFile(bin, harness.HostRepart)
		} else {
			s.setupErr = err
		}
	}
	code := m.Run()
	if line := s.summary.String(); line != "" {
		// go test shows a passing package's output only with -v, so the
		// line can also go to a file (make test prints it).
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
	mu                                       sync.Mutex
	cases, equal, refused, relocated, failed int
	byCategory                               map[string]int
}

func (s *summary) add(o *outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cases++
	switch {
	case o.failed():
		s.failed++
		if s.byCategory == nil {
			s.byCategory = map[string]int{}
		}
		for _, c := range o.categories() {
			s.byCategory[c]++
		}
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
	if len(s.byCategory) > 0 {
		line += fmt.Sprintf(" %v", s.byCategory)
	}
	return line
}
