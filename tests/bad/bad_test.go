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

	"github.com/sprout-initrd/sprout/tests/harness"
)

// catalogueDir holds one directory per case.
var catalogueDir = filepath.Join("..", "..", "testdata", "bad")

// envRequireOracle: "1" makes a missing systemd-repart a failure.
const envRequireOracle = "SPROUT_REQUIRE_ORACLE"

// tools every case may need.
var tools = []string{"sfdisk", "sgdisk", "losetup", "partx", "mkfs.ext4", "mount", "umount"}

var (
	sproutBin string
	setupErr  error
	tally     = &summary{}
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
	code := m.Run()
	if line := tally.String(); line != "" {
		fmt.Println(line)
	}
	return code
}

// summary counts outcomes for the line printed at the end.
type summary struct {
	mu                                      sync.Mutex
	cases, held, failed, skipped            int
	oracleSame, oracleDiffers, oracleNotRun int
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
	line := fmt.Sprintf("bad inputs: %d cases, %d held", s.cases, s.held)
	if s.failed > 0 {
		sort.Strings(s.failures)
		line += fmt.Sprintf(", %d failed (%s)", s.failed, strings.Join(s.failures, " "))
	}
	if s.skipped > 0 {
		line += fmt.Sprintf(", %d skipped (need root; set %s=1 to fail instead)", s.skipped, harness.EnvRequireRoot)
	}
	line += fmt.Sprintf("; systemd-repart 252 exit code: %d same, %d deliberately different, %d not compared",
		s.oracleSame, s.oracleDiffers, s.oracleNotRun)
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
			runCase(t, c)
		})
	}
}

func runCase(t *testing.T, c *badCase) {
	ctx := context.Background()
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
	run, err := runTool(ctx, c.argv(sproutBin, in.device), env)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("$ %s\nexit %d, max RSS %d KiB\nstderr:\n%s", harness.ShellJoin(run.argv), run.exit, run.maxRSS>>10, run.stderr)
	if run.exit != c.exit {
		t.Errorf("exit code %d, want %d", run.exit, c.exit)
	}
	checkMessage(t, c, run, in.device)
	if run.maxRSS > c.maxRSS {
		t.Errorf("peak RSS %d KiB, limit %d KiB", run.maxRSS>>10, c.maxRSS>>10)
	}
	if in.image != "" {
		after, err := harness.ContentHash(in.image)
		if err != nil {
			t.Fatal(err)
		}
		if c.unchanged && after != before {
			t.Errorf("the disk changed; it must stay byte-identical")
		}
		if !c.unchanged && after == before && c.exit == 0 {
			t.Errorf("the disk did not change; this case expects sprout to write")
		}
	}
	if run.exit == 0 && c.exit == 0 {
		checkAfter(t, c, in, run, lba0)
	}
	compareOracle(t, c)
}

// checkMessage: a refusal is one "sprout: " line holding every fragment;
// a success must mention every fragment somewhere on stderr.
func checkMessage(t *testing.T, c *badCase, run toolResult, device string) {
	t.Helper()
	text := run.stderr
	if c.exit != 0 {
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
	for _, want := range c.stderr {
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

// compareOracle runs systemd-repart 252 on a fresh copy of the same input
// and checks that its exit code is the one the case records.
func compareOracle(t *testing.T, c *badCase) {
	if reason, skip := strings.CutPrefix(c.repart, "skip:"); skip {
		t.Logf("systemd-repart 252 not compared:%s", reason)
		tally.add(func(s *summary) { s.oracleNotRun++ })
		return
	}
	want, _ := strconv.Atoi(c.repart)
	if want != c.exit && c.differs == "" {
		t.Errorf("the case expects exit %d where systemd-repart 252 exits %d, but gives no reason (differs =)", c.exit, want)
	}
	if _, err := os.Stat(harness.HostRepart); err != nil {
		if harness.EnvBool(envRequireOracle) {
			t.Errorf("%s missing (%s=1)", harness.HostRepart, envRequireOracle)
		}
		tally.add(func(s *summary) { s.oracleNotRun++ })
		return
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
	res, err := runTool(ctx, c.argv(harness.HostRepart, in.device), env)
	if err != nil {
		t.Fatal(err)
	}
	if res.exit != want {
		t.Errorf("systemd-repart 252 exits %d, the case records %d:\n%s", res.exit, want, res.stderr)
		return
	}
	tally.add(func(s *summary) {
		if want == c.exit {
			s.oracleSame++
		} else {
			s.oracleDiffers++
		}
	})
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
