package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// resetDefs: home with FactoryReset=yes, var without; no Format= (no mkfs).
func resetDefs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"home.conf": "[Partition]\nType=home\nWeight=2000\nFactoryReset=yes\n",
		"var.conf":  "[Partition]\nType=var\nWeight=1000\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestFactoryResetFlags(t *testing.T) {
	t.Setenv("SYSTEMD_IN_INITRD", "0") // the host's kernel command line must not matter
	img := imageWithStore(t)
	defs := resetDefs(t)
	seed := "--seed=0123456789abcdef0123456789abcdef"

	// Before the first run there is nothing to reset.
	if code, _ := runMain(t, "--can-factory-reset", "--definitions="+defs, seed, img); code != ExitCannotFactoryReset {
		t.Errorf("--can-factory-reset before home exists: exit %d, want %d", code, ExitCannotFactoryReset)
	}
	if code, errOut := runMain(t, "--dry-run=no", "--definitions="+defs, seed, img); code != 0 {
		t.Fatalf("first run: exit %d\n%s", code, errOut)
	}
	before := stateOf(t, img)
	code, errOut := runMain(t, "--can-factory-reset", "--dry-run=no", "--definitions="+defs, seed, img)
	if code != ExitCanFactoryReset || errOut != "" {
		t.Errorf("--can-factory-reset with home: exit %d, stderr %q; want %d and silence", code, errOut, ExitCanFactoryReset)
	}
	// A dry run names what it would erase, and writes nothing.
	code, errOut = runMain(t, "--factory-reset=yes", "--definitions="+defs, seed, img)
	if code != 0 || !strings.Contains(errOut, "factory reset: ERASE partition") || !strings.Contains(errOut, `"home"`) {
		t.Errorf("dry run: exit %d, stderr:\n%s", code, errOut)
	}
	if stateOf(t, img) != before {
		t.Errorf("--can-factory-reset or the dry run changed the image")
	}
	// The real run resets home, and a run without the request is a no-op.
	if code, errOut := runMain(t, "--factory-reset=yes", "--dry-run=no", "--definitions="+defs, seed, img); code != 0 ||
		!strings.Contains(errOut, "Factory reset: removing partition") {
		t.Fatalf("reset: exit %d\n%s", code, errOut)
	}
	if code, errOut := runMain(t, "--factory-reset=no", "--dry-run=no", "--definitions="+defs, seed, img); code != 0 ||
		!strings.Contains(errOut, "No changes.") {
		t.Errorf("after the reset: exit %d\n%s", code, errOut)
	}
	if code, errOut := runMain(t, "--factory-reset=perhaps", "--definitions="+defs, img); code != ExitFailure ||
		!strings.Contains(errOut, "--factory-reset=perhaps") {
		t.Errorf("bad boolean: exit %d\n%s", code, errOut)
	}
}
