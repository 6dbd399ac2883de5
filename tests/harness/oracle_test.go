package harness

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// requireChroot returns a chroot oracle, or skips (fails under
// SPROUT_REQUIRE_ORACLE=1) when scripts/oracles.sh has not built it.
func requireChroot(t *testing.T, suite string) Oracle {
	t.Helper()
	RequireRoot(t, "running a chroot oracle (mount namespaces)")
	o, err := ChrootOracle(context.Background(), suite)
	if err != nil {
		if EnvBool(EnvRequireOracle) {
			t.Fatal(err)
		}
		t.Skipf("skipping: %v", err)
	}
	return o
}

// The chroot oracles report their version, see the caller's paths, leave
// no mount behind, and a program that cannot start is an error, never an
// exit code.
func TestChrootOracle(t *testing.T) {
	ctx := context.Background()
	for _, suite := range OracleSuites {
		t.Run(suite, func(t *testing.T) {
			o := requireChroot(t, suite)
			if o.Version < 253 || !strings.HasPrefix(o.VersionLine, "systemd ") {
				t.Errorf("%s: version %d (%q)", suite, o.Version, o.VersionLine)
			}
			// A directory outside /tmp is bound at its own path.
			wd, err := os.Getwd()
			if err != nil {
				t.Fatal(err)
			}
			res, err := o.Run(ctx, nil, "/bin/sh", "-c", `test -f "$1/oracle_test.go" && grep -q "^ID=debian" /etc/os-release && mountpoint -q / && exit 3`, "sh", wd)
			if err != nil || res.ExitCode != 3 {
				t.Errorf("run in the chroot: exit %d, %v, stderr %s", res.ExitCode, err, res.Stderr)
			}
			mounts, err := os.ReadFile("/proc/self/mountinfo")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(mounts), "sprout-oracle") {
				t.Errorf("a mount of the oracle's namespace is visible outside it:\n%s", mounts)
			}
			if _, err := o.Run(ctx, nil, "/usr/bin/no-such-program"); err == nil {
				t.Error("a missing program is not an error")
			}
			if res, err := o.Run(ctx, nil, "/bin/sh", "-c", "kill -SEGV $$"); err == nil {
				t.Errorf("a crashed program is not an error: %+v", res)
			}
			if res, err := o.Run(ctx, nil, "/etc/os-release"); err == nil {
				t.Errorf("a program that could not start is not an error: %+v", res)
			}
		})
	}
	if _, err := ChrootOracle(ctx, "no-such-suite"); err == nil {
		t.Error("a missing chroot is not an error")
	}
	// An incomplete chroot (no stamp yet) is never used.
	cache := t.TempDir()
	if err := os.MkdirAll(filepath.Join(cache, "half/usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := chrootOracle(ctx, cache, "half"); err == nil {
		t.Error("a chroot without its stamp is used")
	}
}

// An oracle newer than sprout's newest version is said to be so, and
// compared under the newest --compat= (never a silent pass).
func TestCompatNote(t *testing.T) {
	o := Oracle{Name: "forky", Root: "/x", Version: 263, VersionLine: "systemd 263 (263-1)"}
	if got := o.Compat(262); got != 262 {
		t.Errorf("Compat = %d, want 262", got)
	}
	note := o.CompatNote(262)
	for _, want := range []string{"systemd 263 (263-1)", "NEWER", "--compat=262"} {
		if !strings.Contains(note, want) {
			t.Errorf("CompatNote = %q, want it to say %q", note, want)
		}
	}
	o.Version, o.VersionLine = 257, "systemd 257"
	if got, note := o.Compat(262), o.CompatNote(262); got != 257 || strings.Contains(note, "NEWER") {
		t.Errorf("257: Compat %d, note %q", got, note)
	}
}
