package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Environment variables understood by every integration tier.
const (
	EnvSproutBin    = "SPROUT_BIN"           // use this binary instead of building ./cmd/sprout
	EnvRequireTools = "SPROUT_REQUIRE_TOOLS" // "1": a missing external tool fails instead of skipping
	EnvRequireRoot  = "SPROUT_REQUIRE_ROOT"  // "1": a test that needs root fails instead of skipping
)

// MissingTools returns the names (or absolute paths) that cannot be found.
func MissingTools(names ...string) []string {
	var missing []string
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	return missing
}

// The Require helpers below are the one way a test (in tests/ or in pkg/)
// says what it needs from the machine. A missing piece skips the test, or
// fails it when one of the named SPROUT_REQUIRE_ variables is set: make
// test sets them all, so CI cannot call a skipped tier green.

// RequireTools needs every program (a name in $PATH or an absolute path);
// SPROUT_REQUIRE_TOOLS=1 makes a missing one a failure.
func RequireTools(t testing.TB, names ...string) {
	t.Helper()
	if missing := MissingTools(names...); len(missing) > 0 {
		Unavailable(t, "tools missing: "+strings.Join(missing, ", "), EnvRequireTools)
	}
}

// RequireRoot needs root; why says what needs it. SPROUT_REQUIRE_ROOT=1
// makes its absence a failure.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, why+" needs root", EnvRequireRoot)
	}
}

// RequireLoopDevices is RequireRoot for a test that attaches loop devices:
// it also needs /dev/loop-control.
func RequireLoopDevices(t testing.TB, why string) {
	t.Helper()
	RequireRoot(t, why)
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		Unavailable(t, why+" needs /dev/loop-control", EnvRequireRoot)
	}
}

// RequireHostOracle needs the host's systemd-repart (HostRepart);
// SPROUT_REQUIRE_ORACLE=1 or SPROUT_REQUIRE_TOOLS=1 makes its absence a
// failure. The chroot oracles are OracleSelection's.
func RequireHostOracle(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath(HostRepart); err != nil {
		Unavailable(t, "oracle "+HostRepart+" missing", EnvRequireOracle, EnvRequireTools)
	}
}

// Unavailable ends a test that cannot run here: it fails t when env or
// one of the other variables is set, and skips it otherwise.
func Unavailable(t testing.TB, reason, env string, others ...string) {
	t.Helper()
	for _, v := range append([]string{env}, others...) {
		if EnvBool(v) {
			t.Fatalf("%s (%s=1 forbids skipping)", reason, v)
		}
	}
	t.Skipf("skipping: %s (set %s=1 to make this a failure)", reason, env)
}

// EnvBool reports whether the variable is set to 1/yes/true.
func EnvBool(name string) bool {
	switch strings.ToLower(os.Getenv(name)) {
	case "1", "y", "yes", "true", "on":
		return true
	}
	return false
}

// EnvInt returns the variable as an int, def when unset.
func EnvInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: %w", name, v, err)
	}
	return n, nil
}

// ModuleRoot returns the directory holding sprout's go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			return filepath.Dir(gomod), nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find module root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// SproutBinary returns the sprout binary under test: $SPROUT_BIN when set,
// otherwise a static build of ./cmd/sprout placed in dir.
func SproutBinary(ctx context.Context, dir string) (string, error) {
	if bin := os.Getenv(EnvSproutBin); bin != "" {
		path, err := exec.LookPath(bin)
		if err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvSproutBin, bin, err)
		}
		return filepath.Abs(path)
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "sprout")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/sprout")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build ./cmd/sprout in %s (set %s to test a prebuilt binary): %w\n%s", root, EnvSproutBin, err, msg)
	}
	return out, nil
}

// SameFile reports whether two paths name the same file (used to notice
// that the "sprout" under test is the oracle itself).
func SameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
