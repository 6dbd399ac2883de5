package differential

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// TestHarnessDetectsDifferences proves the comparisons can fail: broken
// "sprouts" (shell wrappers around the oracle) must be caught in the right
// category, and a fake oracle that refuses on grown disks must send the
// case down the relocate-and-retry path.
func TestHarnessDetectsDifferences(t *testing.T) {
	s := begin(t)
	host, err := harness.HostOracle(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s = s.forOracle(host)
	s.compat = 0 // the broken "sprouts" wrap 252, which has no --compat=
	repart := host.Path
	bin := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(bin, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const last = `for dev; do :; done` // sets $dev to the last argument
	if err := os.Mkdir(filepath.Join(bin, "no-mkfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	script("no-mkfs/mkfs.ext4", "exit 0\n") // "formats" nothing
	if err := os.Mkdir(filepath.Join(bin, "other-mkfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	// mke2fs with a field blkid does not show: the same TYPE, LABEL and
	// UUID, another inode size and reserve.
	script("other-mkfs/mkfs.ext4", `exec /usr/sbin/mkfs.ext4 "$@" -I 128 -m 5`+"\n")
	mkswap := "/usr/sbin/mkswap"
	// A swap header with one byte more in its padding than mkswap writes
	// (sprout writes its header itself: the check compares it with mkswap).
	if err := os.Mkdir(filepath.Join(bin, "mkfs-one-fat"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A FAT32 with one FAT instead of two: blkid sees the same.
	script("mkfs-one-fat/mkfs.vfat", `exec /usr/sbin/mkfs.vfat -f 1 "$@"`+"\n")
	script("other-mkfs/mkswap", last+"\n"+mkswap+` "$@" && printf x | dd of="$dev" bs=1 seek=2000 conv=notrunc 2>/dev/null`+"\n")
	fakes := []struct {
		name, body string
		scenario   string // testdata/differential/<scenario>, first step
		want       string // category that must be reported
	}{
		{"wrong-seed", `exec ` + repart + ` "$@" --seed=00000000000000000000000000000001`, "appliance-600m-to-4g", catTable},
		{"does-nothing", `echo '[]'`, "appliance-600m-to-4g", catTable},
		{"always-refuses", `exit 1`, "appliance-600m-to-4g", catExit},
		{"accepts-the-impossible", `echo '[]'`, "t58-issue-24553-8g", catExit},
		{"writes-when-refusing", last + "\n" + repart + ` "$@"; rc=$?; printf x | dd of="$dev" bs=1 seek=4096 conv=notrunc 2>/dev/null; exit $rc`, "t58-issue-24553-8g", catPreserve},
		{"writes-in-dry-run", last + "\n" + `case "$*" in *--dry-run=yes*) touch "$dev";; esac; exec ` + repart + ` "$@"`, "appliance-600m-to-4g", catDryRun},
		{"touches-existing-partition", last + "\n" + repart + ` "$@"; rc=$?; printf x | dd of="$dev" bs=1 seek=2000000 conv=notrunc 2>/dev/null; exit $rc`, "appliance-600m-to-4g", catPreserve},
		{"wrong-label-json", repart + ` "$@" | sed 's/"label":"var"/"label":"VAR"/'`, "appliance-600m-to-4g", catJSON},
		{"writes-every-boot", last + "\n" + repart + ` "$@"; rc=$?; case "$*" in *--dry-run=no*) touch "$dev";; esac; exit $rc`, "appliance-600m-to-4g", catRerun},
		{"skips-mkfs", `PATH=` + bin + `/no-mkfs:$PATH exec ` + repart + ` "$@"`, "appliance-600m-to-4g", catFS},
		{"other-mke2fs-options", `PATH=` + bin + `/other-mkfs:$PATH exec ` + repart + ` "$@"`, "appliance-600m-to-4g", catFS},
		{"one-fat", `PATH=` + bin + `/mkfs-one-fat:$PATH exec ` + repart + ` "$@"`, "v-fresh-2g", catFS},
		{"other-swap-header", `PATH=` + bin + `/other-mkfs:$PATH exec ` + repart + ` "$@"`, "v-fresh-2g", catFS},
	}
	for _, f := range fakes {
		t.Run(f.name, func(t *testing.T) {
			fake := *s
			fake.sprout, fake.selfTest, fake.summary = script(f.name, f.body), false, &summary{}
			o := runFirstStep(t, &fake, f.scenario)
			if !slices.Contains(o.categories(), f.want) {
				t.Errorf("sprout %q: want a %s failure, got %v\n%s", f.name, f.want, o.categories(), o.report())
			}
		})
	}
	t.Run("oracle-refuses-until-relocated", func(t *testing.T) {
		fake := *s
		fake.summary = &summary{}
		fake.oracle = harness.Oracle{Name: "fake", Path: script("oracle-needs-relocation", last+"\n"+
			`if sfdisk -d "$dev" 2>&1 >/dev/null | grep -q 'backup GPT table is not on the end'; then echo "fake: refusing" >&2; exit 1; fi`+"\n"+
			`exec `+repart+` "$@"`), Version: 252}
		fake.sprout, fake.selfTest = repart, false
		o := runFirstStep(t, &fake, "appliance-600m-to-4g")
		if o.kind != kindRelocated || o.failed() {
			t.Errorf("want a clean %s case, got %s %v\n%s", kindRelocated, o.kind, o.categories(), o.report())
		}
	})
}

// runFirstStep runs the first step of a named scenario with suite s.
func runFirstStep(t *testing.T, s *suite, name string) *outcome {
	t.Helper()
	dir := filepath.Join(scenarioRoot, name)
	sc, err := loadScenario(dir)
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	ctx := context.Background()
	base, err := buildScenarioBase(ctx, sc, abs, work)
	if err != nil {
		t.Fatal(err)
	}
	stepDir := filepath.Join(work, "step")
	if err := os.Mkdir(stepDir, 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := scenarioCase(sc, sc.Steps[0], abs, stepDir, base, s.oracle.Version)
	if err != nil {
		t.Fatal(err)
	}
	c.name = name
	c.oracleWant = nil
	o, err := s.runCase(ctx, c, stepDir)
	if err != nil {
		o.fail(catHarness, "%v", err)
	}
	return o
}
