package bad

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/tests/harness"
)

// catalogueDir holds one directory per case.
const catalogueDir = "testdata"

// tools every case may need.
var tools = []string{"sfdisk", "sgdisk", "losetup", "partx", "mkfs.ext4", "mount", "umount"}

var (
	sproutBin string
	setupErr  error
	// oracles are the systemd-repart versions every case runs against
	// (sprout with the matching --compat=), and tallies their summaries.
	oracles []harness.Oracle
	notes   []string
	tallies = map[int]*summary{}
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sprout-bad-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	sproutBin, setupErr = harness.SproutBinary(context.Background(), dir)
	if setupErr == nil && os.Geteuid() == 0 {
		oracles, notes, setupErr = harness.OracleSelection(context.Background())
	}
	if os.Geteuid() != 0 {
		// Chroot oracles need root; the host's runs without.
		host, err := harness.HostOracle(context.Background())
		if err == nil {
			oracles = []harness.Oracle{host}
		}
	}
	for _, o := range oracles {
		tallies[o.Version] = &summary{oracle: o}
	}
	code := m.Run()
	for _, n := range notes {
		fmt.Println("bad inputs:", n)
	}
	for _, o := range oracles {
		if line := tallies[o.Version].String(); line != "" {
			fmt.Println(line)
		}
	}
	return code
}

// summary counts one oracle's outcomes for the line printed at the end.
type summary struct {
	oracle                                  harness.Oracle
	mu                                      sync.Mutex
	cases, held, failed, skipped            int
	oracleSame, oracleDiffers, oracleNotRun int
	reasonSame, reasonDiffers               int // both refused: same class of reason, or a recorded difference
	failures                                []string
}

func (s *summary) add(f func(s *summary)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *summary) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cases == 0 {
		return ""
	}
	v := s.oracle.Compat(int(compat.Newest))
	line := fmt.Sprintf("bad inputs, --compat=%d: %d cases, %d held", v, s.cases, s.held)
	if s.failed > 0 {
		sort.Strings(s.failures)
		line += fmt.Sprintf(", %d failed (%s)", s.failed, strings.Join(s.failures, " "))
	}
	if s.skipped > 0 {
		line += fmt.Sprintf(", %d skipped (need root; set %s=1 to fail instead)", s.skipped, harness.EnvRequireRoot)
	}
	line += fmt.Sprintf("; %s exit code: %d same, %d deliberately different, %d not compared",
		s.oracle, s.oracleSame, s.oracleDiffers, s.oracleNotRun)
	line += fmt.Sprintf("; both refuse: %d for the same class of reason, %d deliberately not", s.reasonSame, s.reasonDiffers)
	if s.oracle.Version > int(compat.Newest) {
		line += fmt.Sprintf(" (NEWER than sprout's newest supported version %d: compared under --compat=%d)", compat.Newest, v)
	}
	return line
}

func TestCatalogue(t *testing.T) {
	harness.RequireTools(t, tools...)
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	dirs, err := filepath.Glob(filepath.Join(catalogueDir, "*", "case.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 40 {
		t.Errorf("the catalogue has %d cases; issue 5 asks for at least 40", len(dirs))
	}
	sort.Strings(dirs)
	for _, path := range dirs {
		c, err := loadCase(filepath.Dir(path))
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			for _, o := range oracles {
				tally := tallies[o.Version]
				t.Run(strconv.Itoa(o.Version), func(t *testing.T) {
					// The versions of one case run side by side: each has
					// its own disks (and loop devices).
					t.Parallel()
					tally.add(func(s *summary) { s.cases++ })
					// Deferred: t.Fatal and t.Skip end the test with Goexit.
					defer func() {
						switch {
						case t.Skipped():
							tally.add(func(s *summary) { s.skipped++ })
						case t.Failed():
							tally.add(func(s *summary) { s.failed++; s.failures = append(s.failures, c.name) })
						default:
							tally.add(func(s *summary) { s.held++ })
						}
					}()
					runCase(t, c, o, tally)
				})
			}
		})
	}
}

// runCase runs sprout on the case's disk under the --compat= of oracle
// o, checks it, then runs o on its own copy and compares exit codes.
func runCase(t *testing.T, c *badCase, o harness.Oracle, tally *summary) {
	ctx := context.Background()
	v := o.Compat(int(compat.Newest))
	wantExit, wantUnchanged := c.exitAt(v), c.unchangedAt(v)
	if c.needsRoot() {
		harness.RequireRoot(t, "case "+c.name+" (loop devices)")
	}
	t.Logf("%s", c.description)
	in, err := prepare(ctx, c, t.TempDir())
	if in != nil {
		t.Cleanup(func() {
			if err := in.release(ctx); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatalf("preparing the disk: %v", err)
	}
	before, lba0 := "", ""
	if in.image != "" {
		if before, err = harness.ContentHash(in.image); err != nil {
			t.Fatal(err)
		}
		if lba0, err = harness.RangeHash(in.image, 0, 512); err != nil {
			t.Fatal(err)
		}
	}

	env, err := c.env(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	run, err := runTool(ctx, c.argv(sproutBin, in.device, false, fmt.Sprintf("--compat=%d", v)), env)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("$ %s\nexit %d, max RSS %d KiB\nstderr:\n%s", harness.ShellJoin(run.argv), run.exit, run.maxRSS>>10, run.stderr)
	if run.exit != wantExit {
		t.Errorf("exit code %d, want %d", run.exit, wantExit)
	}
	checkMessage(t, c.stderrAt(v), wantExit, run, in.device)
	if run.maxRSS > c.maxRSS {
		t.Errorf("peak RSS %d KiB, limit %d KiB", run.maxRSS>>10, c.maxRSS>>10)
	}
	if in.image != "" {
		after, err := harness.ContentHash(in.image)
		if err != nil {
			t.Fatal(err)
		}
		if wantUnchanged && after != before {
			t.Errorf("the disk changed; it must stay byte-identical")
		}
		if !wantUnchanged && after == before && wantExit == 0 {
			t.Errorf("the disk did not change; this case expects sprout to write")
		}
	}
	if run.exit == 0 && wantExit == 0 {
		checkAfter(t, c, in, run, lba0)
	}
	compareOracle(t, c, o, tally, run)
}

// checkMessage: a refusal is one "sprout: " line holding every fragment;
// a success must mention every fragment somewhere on stderr.
func checkMessage(t *testing.T, fragments []string, exit int, run toolResult, device string) {
	t.Helper()
	text := run.stderr
	if exit != 0 {
		var errLines []string
		for _, l := range strings.Split(run.stderr, "\n") {
			if strings.HasPrefix(l, "sprout: ") {
				errLines = append(errLines, l)
			}
		}
		if len(errLines) != 1 {
			t.Errorf("want exactly one error line (\"sprout: …\"), got %d", len(errLines))
			return
		}
		text = errLines[0]
	}
	for _, want := range fragments {
		want = strings.ReplaceAll(want, "{device}", device)
		alts := strings.Split(want, " || ")
		found := false
		for _, a := range alts {
			found = found || strings.Contains(text, a)
		}
		if !found {
			t.Errorf("message does not name %q:\n%s", want, text)
		}
	}
}

// checkAfter runs the checks of a case that must succeed and write.
func checkAfter(t *testing.T, c *badCase, in *input, run toolResult, lba0 string) {
	ctx := context.Background()
	for _, check := range c.after {
		switch check {
		case "lba0-unchanged":
			after, err := harness.RangeHash(in.image, 0, 512)
			if err != nil {
				t.Fatal(err)
			}
			if after != lba0 {
				t.Errorf("the first 512 bytes (MBR) changed; they must be kept")
			}
		case "valid-gpt":
			res, err := harness.Run(ctx, nil, "sgdisk", "--verify", in.device)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(res.Stdout, "No problems found") {
				t.Errorf("sgdisk --verify after the run:\n%s", res.Stdout)
			}
			raw, err := harness.ReadRawGPT(in.image, int64(c.sector))
			if err != nil {
				t.Fatalf("reading the GPT after the run: %v", err)
			}
			if !raw.Primary.HeaderCRCOK || !raw.Primary.EntriesCRCOK || !raw.Backup.HeaderCRCOK || !raw.Backup.EntriesCRCOK {
				t.Errorf("after the run a GPT copy is still damaged: primary %+v backup %+v", raw.Primary, raw.Backup)
			}
		case "rerun-no-changes":
			before, err := harness.ContentHash(in.image)
			if err != nil {
				t.Fatal(err)
			}
			again, err := runTool(ctx, run.argv, run.env)
			if err != nil {
				t.Fatal(err)
			}
			after, err := harness.ContentHash(in.image)
			if err != nil {
				t.Fatal(err)
			}
			if again.exit != 0 || !strings.Contains(again.stderr, "No changes") || after != before {
				t.Errorf("second run: exit %d, disk changed %v, want exit 0, \"No changes\" and no write:\n%s", again.exit, after != before, again.stderr)
			}
		}
	}
}

// compareOracle runs the oracle on a fresh copy of the same input and
// checks that its exit code is the one the case records for its version.
func compareOracle(t *testing.T, c *badCase, o harness.Oracle, tally *summary, run toolResult) {
	v := o.Compat(int(compat.Newest))
	if p := c.pinned(); p != 0 && p != v {
		t.Logf("%s not compared: the case pins --compat=%d", o, p)
		tally.add(func(s *summary) { s.oracleNotRun++ })
		return
	}
	repart := c.repartAt(o.Version)
	if reason, skip := strings.CutPrefix(repart, "skip:"); skip {
		t.Logf("%s not compared:%s", o, reason)
		tally.add(func(s *summary) { s.oracleNotRun++ })
		return
	}
	want, _ := strconv.Atoi(repart)
	if want != c.exitAt(v) && c.differs == "" {
		t.Errorf("the case expects exit %d where %s exits %d, but gives no reason (differs =)", c.exitAt(v), o, want)
	}
	ctx := context.Background()
	in, err := prepare(ctx, c, t.TempDir())
	if in != nil {
		defer in.release(ctx)
	}
	if err != nil {
		t.Fatalf("preparing the oracle's disk: %v", err)
	}
	env, err := c.env(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	argv := c.argv(o.Path, in.device, true)
	res, err := o.Run(ctx, append(env, "SYSTEMD_LOG_LOCATION=0"), argv...)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != want {
		t.Errorf("%s exits %d, the case records %d (repart252 =, or repart@VERSION = from the version it changed in):\n%s",
			o, res.ExitCode, want, res.Stderr)
		return
	}
	if run.exit != 0 && res.ExitCode != 0 {
		compareReasons(t, c, o, tally, run.stderr, res.Stderr)
	}
	tally.add(func(s *summary) {
		if want == c.exitAt(v) {
			s.oracleSame++
		} else {
			s.oracleDiffers++
		}
	})
}

// compareReasons: when both refuse, the reasons must be of one class
// (harness.RefusalClass), or the case says why not (reason-differs =). A
// message either table does not know is a failure: an oracle that
// refused for a reason nobody looked at is not agreement.
func compareReasons(t *testing.T, c *badCase, o harness.Oracle, tally *summary, sproutStderr, repartStderr string) {
	t.Helper()
	sc, sl := harness.SproutRefusal(sproutStderr)
	rc, rl := harness.RepartRefusal(repartStderr)
	switch {
	case sc == harness.RefusedUnknown:
		t.Errorf("sprout's refusal is of no known class (tests/harness/refusal.go): %q", sl)
	case rc == harness.RefusedUnknown:
		t.Errorf("%s refuses for a reason of no known class (tests/harness/refusal.go): %q", o, rl)
	case sc != rc && c.reasonDiffers == "":
		t.Errorf("both refuse, for different reasons: sprout %s (%q), %s %s (%q); a deliberate difference needs reason-differs =", sc, sl, o, rc, rl)
	case sc == rc && c.reasonDiffers != "":
		t.Errorf("reason-differs is set, but both refuse for a reason of class %s", sc)
	case sc != rc:
		tally.add(func(s *summary) { s.reasonDiffers++ })
	default:
		tally.add(func(s *summary) { s.reasonSame++ })
	}
}

type toolResult struct {
	argv           []string
	env            []string
	exit           int
	stdout, stderr string
	maxRSS         int64 // bytes
}

// runTool runs argv with a fixed C locale and no pager or colours, and
// reports its exit code and peak resident memory.
func runTool(ctx context.Context, argv, env []string) (toolResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "SYSTEMD_PAGER=cat", "SYSTEMD_COLORS=0", "SYSTEMD_LOG_COLOR=0", "SYSTEMD_LOG_LOCATION=0")
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := toolResult{argv: argv, env: env, stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return res, fmt.Errorf("%s: killed by %v (a crash is never an acceptable answer)\n%s", harness.ShellJoin(argv), ws.Signal(), res.stderr)
		}
	default:
		return res, fmt.Errorf("%s: %w", harness.ShellJoin(argv), err)
	}
	res.exit = cmd.ProcessState.ExitCode()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.maxRSS = ru.Maxrss << 10 // Linux reports KiB
	}
	return res, nil
}
