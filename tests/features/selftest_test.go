package features

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// TestHarnessDetectsDifferences runs steps with broken "sprouts" (shell
// wrappers around the real one) and requires the comparison to report
// each: a flag dropped (a table differs), a generated file written
// elsewhere (a file differs), an exit code changed, and a dry run that
// writes.
func TestHarnessDetectsDifferences(t *testing.T) {
	harness.RequireRoot(t, "the features tier")
	ctx := context.Background()
	o, err := findOracle(ctx, "forky")
	if err != nil {
		harness.Unavailable(t, err.Error(), harness.EnvRequireOracle)
	}
	real, err := harness.SproutBinary(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	selection, err := loadScenario(filepath.Join(scenarioRoot, "selection"))
	if err != nil {
		t.Fatal(err)
	}
	crypttab, err := loadScenario(filepath.Join(scenarioRoot, "crypttab"))
	if err != nil {
		t.Fatal(err)
	}
	// Each wrapper rewrites one argument (sed on one argument per line)
	// or the exit code; want is what the report must say.
	for _, c := range []struct {
		name, rewrite, exit string
		sc                  *scenario
		dir, step, want     string
	}{
		{"a flag ignored", `s/^--defer-partitions=.*/--pretty=no/`, "", selection, "selection", "defer-home", "tables differ"},
		{"a file elsewhere", `s|^--generate-crypttab=.*|--generate-crypttab=/etc/other|`, "", crypttab, "crypttab", "existing-and-deferred", "etc/crypttab differs"},
		{"another exit code", ``, "3", selection, "selection", "all", "exit codes differ"},
		{"a dry run that writes", `s/^--dry-run=yes$/--dry-run=no/`, "", selection, "selection", "all", "--dry-run=yes changed the image"},
	} {
		t.Run(c.name, func(t *testing.T) {
			work := t.TempDir()
			wrapper := filepath.Join(work, "broken")
			script := "#!/bin/bash\nmapfile -t args < <(printf '%s\\n' \"$@\" | sed '" + c.rewrite + "')\n\"" + real + "\" \"${args[@]}\"\n"
			if c.exit != "" {
				script += "exit " + c.exit + "\n"
			}
			if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			s := &suite{oracle: o, sprout: wrapper}
			var st step
			for _, x := range c.sc.Steps {
				if x.Name == c.step {
					st = x
				}
			}
			if st.Name == "" {
				t.Fatalf("no step %s", c.step)
			}
			base := filepath.Join(work, "base.img")
			if err := harness.CreateSparse(base, 2<<30); err != nil {
				t.Fatal(err)
			}
			if _, err := harness.MustSucceed(ctx, "sh", "-c", `sfdisk --quiet "$0" <"$1"`, base, filepath.Join(scenarioRoot, c.dir, c.sc.Table)); err != nil {
				t.Fatal(err)
			}
			stepDir := filepath.Join(work, "step")
			if err := os.Mkdir(stepDir, 0o755); err != nil {
				t.Fatal(err)
			}
			abs, _ := filepath.Abs(filepath.Join(scenarioRoot, c.dir))
			_, problems := s.step(t, ctx, abs, stepDir, c.sc, st, base, [2]string{})
			found := false
			for _, p := range problems {
				found = found || strings.Contains(p, c.want)
			}
			if !found {
				t.Errorf("%s: the comparison did not report %q: %q", c.name, c.want, problems)
			}
		})
	}
}
