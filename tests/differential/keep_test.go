package differential

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// runAndReport runs one case as the current (sub)test: harness errors and
// comparison failures both fail it, with the full report.
func (s *suite) runAndReport(t *testing.T, c *diffCase, dir string) *outcome {
	t.Helper()
	o, err := s.runCase(context.Background(), c, dir)
	if err != nil {
		o.fail(catHarness, "%v", err)
	}
	s.summary.add(o)
	t.Logf("%s: %s", o.kind, o.oneLine())
	if o.failed() {
		t.Errorf("%s", o.report())
		if s.keep != "" {
			if path, err := s.keepCase(s.keep, t.Name(), o); err != nil {
				t.Errorf("keep failing case: %v", err)
			} else {
				t.Logf("failing case kept in %s", path)
			}
		}
	}
	return o
}

// keepCase writes a reproducible copy of a failing case: the input image
// (sparse), the definitions, the report and a script re-running both tools.
func (s *suite) keepCase(root, testName string, o *outcome) (string, error) {
	c := o.c
	dir := filepath.Join(root, strings.NewReplacer("/", "__", " ", "_").Replace(testName))
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.txt"), []byte(o.report()), 0o644); err != nil {
		return "", err
	}
	if !c.absent {
		if err := harness.CopySparse(c.input, filepath.Join(dir, "input.img")); err != nil {
			return "", err
		}
	}
	var defArgs []string
	for i, d := range c.defDirs {
		name := fmt.Sprintf("definitions%d", i)
		if err := copyTree(d, filepath.Join(dir, name)); err != nil {
			return "", err
		}
		defArgs = append(defArgs, "--definitions="+name)
	}
	flags := append(append(defArgs, "--seed="+c.repartSeed, "--json=short"), c.args...)
	var sh strings.Builder
	fmt.Fprintf(&sh, "#!/bin/sh\n# Re-runs differential case %s (see report.txt).\n", testName)
	sh.WriteString("# Usage: SPROUT=/path/to/sprout ./repro.sh\n")
	if c.loop {
		fmt.Fprintf(&sh, "# NOTE: the original run used loop devices with %d-byte sectors (losetup --sector-size %d -P).\n", c.sectorSize, c.sectorSize)
	}
	sh.WriteString("cd \"$(dirname \"$0\")\"\nSPROUT=${SPROUT:-sprout}\nrm -f oracle.img sprout.img\n")
	if !c.absent {
		sh.WriteString("cp --sparse=always input.img oracle.img\ncp --sparse=always input.img sprout.img\n")
	}
	mod, err := harness.ModuleRoot()
	if err != nil {
		return "", err
	}
	// The oracle's paths must be absolute (a chroot oracle binds them in).
	fmt.Fprintf(&sh, "# oracle: %s\n", s.oracle)
	fmt.Fprintf(&sh, "%s %s \"$PWD/oracle.img\"; echo \"oracle exit $?\"\n", s.oracle.ShellCommand(mod),
		strings.ReplaceAll(harness.ShellJoin(append([]string{"--dry-run=no"}, flags...)), "--definitions=", "--definitions=$PWD/"))
	fmt.Fprintf(&sh, "\"$SPROUT\" %s sprout.img; echo \"sprout exit $?\"\n", harness.ShellJoin(append(append([]string{"--dry-run=no"}, flags...), s.sproutFlags()...)))
	sh.WriteString("sfdisk --json oracle.img >oracle.sfdisk.json; sfdisk --json sprout.img >sprout.sfdisk.json\n")
	sh.WriteString("diff -u oracle.sfdisk.json sprout.sfdisk.json\n")
	if err := os.WriteFile(filepath.Join(dir, "repro.sh"), []byte(sh.String()), 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

// copyTree copies a definitions directory, keeping symlinks as symlinks.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		}
	})
}

// oneLine summarises a case for -v logs: the oracle's verdict and message.
func (o *outcome) oneLine() string {
	if o.kind == kindOracleAssert {
		return strings.Join(o.notes, "; ")
	}
	if o.oracle == nil {
		return "no oracle run"
	}
	r := o.oracle.final
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	return fmt.Sprintf("oracle exit %d (%s) in %dms", r.ExitCode, lines[len(lines)-1], o.durationMS)
}
