package plan_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/encryption"
	"github.com/sprout-initrd/sprout/pkg/gpt"
	"github.com/sprout-initrd/sprout/pkg/plan"
	"github.com/sprout-initrd/sprout/pkg/repartd"
	"github.com/sprout-initrd/sprout/pkg/report"
	"github.com/sprout-initrd/sprout/pkg/sdvalue"
	"github.com/sprout-initrd/sprout/tests/harness"
)

// Golden plans: each directory under testdata/plans holds a disk (an
// sfdisk dump, or none for a blank disk), definitions and settings, and
// the plans sprout makes for them under each oracle's --compat=, rendered
// as text (plan.golden for 252, plan-VERSION.golden for the others).
// TestGoldenPlans compares against the files (go test -update rewrites
// them); TestGoldenPlansAgainstOracle checks that the partitions of each
// plan are what that systemd-repart makes from the same inputs, so the
// golden files are not just sprout agreeing with itself.

var update = flag.Bool("update", false, "rewrite golden plan files")

const plansDir = "testdata/plans"

// scenario is one golden case.
type scenario struct {
	name        string
	dir         string
	size        uint64 // disk size in bytes when planned
	createdSize uint64 // size the table was written for (< size: the disk grew)
	sector      int
	empty       plan.EmptyMode
	seed        uuid.UUID
	dump        string // sfdisk dump, "" for a blank disk
	// crypt is the Encrypt= settings (key-file=, tpm2-device=).
	crypt encryption.Settings
	// oracleDryRun runs systemd-repart with --dry-run=yes: it cannot make
	// LUKS2 volumes on this host (no device-mapper), and its dry run prints
	// the same rows.
	oracleDryRun bool
}

func loadScenarios(t *testing.T) []scenario {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(plansDir, "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden scenarios in %s: %v", plansDir, err)
	}
	var out []scenario
	for _, d := range dirs {
		s := scenario{name: filepath.Base(d), dir: d, sector: 512, empty: plan.EmptyRefuse,
			crypt: encryption.Settings{TPM2PCRs: "7"}}
		settings, err := os.ReadFile(filepath.Join(d, "settings"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Fields(string(settings)) {
			k, v, _ := strings.Cut(line, "=")
			switch k {
			case "size":
				s.size = mustSize(t, v)
			case "created-size":
				s.createdSize = mustSize(t, v)
			case "sector":
				s.sector, _ = strconv.Atoi(v)
			case "empty":
				s.empty = plan.EmptyMode(v)
			case "seed":
				s.seed = uuid.MustParse(v)
			case "key-file":
				s.crypt.KeyFile = v
			case "tpm2-device":
				s.crypt.TPM2Device = v
			case "tpm2-pcrs":
				s.crypt.TPM2PCRs = v
			case "oracle":
				s.oracleDryRun = v == "dry-run"
			default:
				t.Fatalf("%s/settings: unknown %q", d, k)
			}
		}
		if s.createdSize == 0 {
			s.createdSize = s.size
		}
		if b, err := os.ReadFile(filepath.Join(d, "disk.sfdisk")); err == nil {
			s.dump = string(b)
		}
		out = append(out, s)
	}
	return out
}

func mustSize(t *testing.T, v string) uint64 {
	n, err := sdvalue.ParseSize(v)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var dumpLine = regexp.MustCompile(`^\S*?(\d+)\s*:\s*(.*)$`)

// tableFromDump turns an sfdisk dump into the table sfdisk would write
// on a disk of createdSize bytes.
func (s scenario) table(t *testing.T) *gpt.Table {
	if s.dump == "" {
		return nil
	}
	total := s.createdSize / uint64(s.sector)
	tb := gpt.New(int64(s.createdSize), s.sector, uuid.Nil)
	sc := bufio.NewScanner(strings.NewReader(s.dump))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.Contains(k, " ") {
			switch k {
			case "label-id":
				tb.DiskGUID = uuid.MustParse(v)
				continue
			case "first-lba":
				tb.FirstUsableLBA, _ = strconv.ParseUint(v, 10, 64)
				continue
			case "label", "unit", "sector-size":
				continue
			}
		}
		m := dumpLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		idx, _ := strconv.Atoi(m[1])
		e := gpt.Entry{Index: idx}
		for _, f := range splitFields(m[2]) {
			k, v, _ := strings.Cut(f, "=")
			v = strings.Trim(strings.TrimSpace(v), `"`)
			switch k {
			case "start":
				e.FirstLBA, _ = strconv.ParseUint(v, 10, 64)
			case "size":
				n, _ := strconv.ParseUint(v, 10, 64)
				e.LastLBA = e.FirstLBA + n - 1
			case "type":
				e.Type = uuid.MustParse(v)
			case "uuid":
				e.UUID = uuid.MustParse(v)
			case "name":
				e.Name = v
			case "attrs":
				for _, b := range strings.Fields(strings.TrimPrefix(v, "GUID:")) {
					for _, bit := range strings.Split(b, ",") {
						n, _ := strconv.Atoi(bit)
						e.Attributes |= 1 << n
					}
				}
			}
		}
		tb.Entries = append(tb.Entries, e)
	}
	tb.LastUsableLBA = total - 2 - uint64(128*128/s.sector)
	return tb
}

func splitFields(s string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			cur.WriteRune(r)
		case r == ',' && !quoted:
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	return append(out, strings.TrimSpace(cur.String()))
}

// plan makes the scenario's plan as systemd-repart version v would. The
// disk is an image file when its sectors are 512 bytes (the oracle test
// writes one), a loop device otherwise.
func (s scenario) plan(t *testing.T, v compat.Version) (*plan.Plan, error) {
	dir, err := filepath.Abs(filepath.Join(s.dir, "defs"))
	if err != nil {
		t.Fatal(err)
	}
	defs, err := repartd.Load(repartd.Options{Dirs: []string{dir}, Compat: v})
	if err != nil {
		t.Fatal(err)
	}
	snap := plan.Snapshot{Size: s.size, SectorSize: s.sector, Label: plan.LabelNone, ImageFile: s.sector == 512}
	if tb := s.table(t); tb != nil {
		snap.Label, snap.Table = plan.LabelGPT, tb
	}
	return plan.Make(defs, snap, plan.Options{Empty: s.empty, Seed: s.seed,
		Encryption: encryption.Capabilities{Settings: s.crypt}, Compat: v})
}

// relative writes the definitions' absolute directory, which notices
// name, as the repository-relative path, so golden files do not depend on
// where the repository is checked out.
func (s scenario) relative(t *testing.T, out string) string {
	abs, err := filepath.Abs(filepath.Join(s.dir, "defs"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(out, abs, filepath.Join(s.dir, "defs"))
}

// goldenVersions are the versions with a golden file each, the versions
// of the oracles: plan.golden is 252's, plan-VERSION.golden the others'.
var goldenVersions = []compat.Version{252, 254, 257, 262}

func goldenFile(dir string, v compat.Version) string {
	if v == compat.Oldest {
		return filepath.Join(dir, "plan.golden")
	}
	return filepath.Join(dir, fmt.Sprintf("plan-%d.golden", v))
}

func render(p *plan.Plan, err error) string {
	var b bytes.Buffer
	if err != nil {
		fmt.Fprintf(&b, "error: %v\n", err)
		return b.String()
	}
	rows := report.Rows(p, func(n int) string { return fmt.Sprintf("disk%d", n) })
	report.Table(&b, rows, true)
	b.WriteString("\n")
	for _, n := range p.Notices {
		fmt.Fprintf(&b, "notice: %s\n", n)
	}
	if !p.Changed() {
		b.WriteString("No changes.\n")
	}
	report.Steps(&b, p)
	return b.String()
}

func TestGoldenPlans(t *testing.T) {
	for _, s := range loadScenarios(t) {
		for _, v := range goldenVersions {
			t.Run(fmt.Sprintf("%s/%d", s.name, v), func(t *testing.T) {
				golden := goldenFile(s.dir, v)
				checkGolden(t, s.relative(t, render(s.plan(t, v))), golden)
			})
		}
	}
}

// checkGolden compares a rendered plan with its golden file (-update
// rewrites the file first).
func checkGolden(t *testing.T, got, golden string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("plan differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", golden, got, want)
	}
}

// oracleRow is the part of systemd-repart's JSON a plan must match.
type oracleRow struct {
	Type       string `json:"type"`
	Label      string `json:"label"`
	UUID       string `json:"uuid"`
	File       string `json:"file"`
	Offset     uint64 `json:"offset"`
	OldSize    uint64 `json:"old_size"`
	RawSize    uint64 `json:"raw_size"`
	OldPadding uint64 `json:"old_padding"`
	RawPadding uint64 `json:"raw_padding"`
	Activity   string `json:"activity"`
}

// TestGoldenPlansAgainstOracle makes each golden scenario's disk and runs
// every oracle (tests/harness: the host's 252 and the Debian chroots) on
// it: the rows of sprout's plan under the oracle's --compat= must be the
// oracle's JSON rows.
func TestGoldenPlansAgainstOracle(t *testing.T) {
	harness.RequireTools(t, "/usr/sbin/sfdisk", "/usr/sbin/losetup")
	harness.RequireLoopDevices(t, "the oracles' disks")
	oracles, notes, err := harness.OracleSelection(context.Background())
	for _, n := range notes {
		t.Log(n)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range oracles {
		v := compat.Version(o.Compat(int(compat.Newest)))
		t.Run(strconv.Itoa(o.Version), func(t *testing.T) {
			t.Log(o.CompatNote(int(compat.Newest)))
			for _, s := range loadScenarios(t) {
				t.Run(s.name, func(t *testing.T) { compareWithOracle(t, s, o, v) })
			}
		})
	}
}

func compareWithOracle(t *testing.T, s scenario, o harness.Oracle, v compat.Version) {
	p, perr := s.plan(t, v)
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, int64(s.createdSize)); err != nil {
		t.Fatal(err)
	}
	dev := img
	if s.sector != 512 {
		out, err := exec.Command("losetup", "-f", "--show", "-P", "--sector-size", strconv.Itoa(s.sector), img).Output()
		if err != nil {
			t.Fatal(err)
		}
		dev = strings.TrimSpace(string(out))
		defer exec.Command("losetup", "-d", dev).Run()
	}
	if s.dump != "" {
		cmd := exec.Command("sfdisk", "-q", "--no-reread", "--no-tell-kernel", dev)
		cmd.Stdin = strings.NewReader(s.dump)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sfdisk: %v: %s", err, out)
		}
	}
	if s.size != s.createdSize {
		if s.sector != 512 {
			t.Fatal("grown disks with 4K sectors are not supported by this harness")
		}
		if err := os.Truncate(img, int64(s.size)); err != nil {
			t.Fatal(err)
		}
	}
	dryRun := "--dry-run=no"
	if s.oracleDryRun {
		dryRun = "--dry-run=yes"
	}
	abs, err := filepath.Abs(filepath.Join(s.dir, "defs"))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{o.Path, dryRun, "--json=short", "--definitions=" + abs,
		"--seed=" + s.seed.String(), "--empty=" + string(s.empty)}
	if s.empty == plan.EmptyCreate {
		args = append(args, fmt.Sprint("--size=", s.size))
		os.Remove(img) // --empty=create makes the file itself
	}
	args = append(args, dev)
	res, err := o.Run(context.Background(), nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	if perr != nil {
		if res.ExitCode == 0 {
			t.Fatalf("sprout refuses (%v) but %s succeeds:\n%s", perr, o, res.Stdout)
		}
		// Refused by both counts only for one class of reason: an oracle
		// that refuses for another (or for none a table knows) is not
		// agreement.
		sc := harness.SproutErrorClass(perr)
		rc, rl := harness.RepartRefusal(res.Stderr)
		if sc == harness.RefusedUnknown || sc != rc {
			t.Fatalf("sprout refuses (%v: class %q) but %s exits %d for a reason of class %q: %q", perr, sc, o, res.ExitCode, rc, rl)
		}
		return
	}
	if res.ExitCode != 0 {
		t.Fatalf("%s exits %d:\n%s", o, res.ExitCode, res.Stderr)
	}
	var got []oracleRow
	if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil {
		t.Fatalf("parse %s: %v", res.Stdout, err)
	}
	rows := report.Rows(p, func(int) string { return "" })
	if len(rows) != len(got) {
		t.Fatalf("%d rows, %s has %d:\n%s", len(rows), o, len(got), res.Stdout)
	}
	for i, r := range rows {
		file := ""
		if r.FileJSON != nil {
			file = *r.FileJSON
		}
		want := oracleRow{r.Type, r.Label, r.UUID, file, r.Offset, r.OldSize, r.RawSize, r.OldPadding, r.RawPadding, r.Activity}
		if want != got[i] {
			t.Errorf("row %d:\n sprout %+v\n oracle %+v", i, want, got[i])
		}
	}
}
