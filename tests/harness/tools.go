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

// RequireTools skips t when a tool is missing, or fails it when
// SPROUT_REQUIRE_TOOLS=1 (CI must not call a skipped tier green).
func RequireTools(t testing.TB, names ...string) {
	t.Helper()
	if missing := MissingTools(names...); len(missing) > 0 {
		if EnvBool(EnvRequireTools) {
			t.Fatalf("required tools missing: %s (%s=1)", strings.Join(missing, ", "), EnvRequireTools)
		}
		t.Skipf("skipping: tools missing: %s (set %s=1 to make this a failure)", strings.Join(missing, ", "), EnvRequireTools)
	}
}

// RequireRoot skips t (or fails it under SPROUT_REQUIRE_ROOT=1) unless the
// test runs as root; why says what needs root.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if EnvBool(EnvRequireRoot) {
		t.Fatalf("%s needs root (%s=1)", why, EnvRequireRoot)
	}
	t.Skipf("skipping: %s needs root (set %s=1 to make this a failure)", why, EnvRequireRoot)
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
