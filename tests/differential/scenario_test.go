package differential

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// scenarioRoot holds one directory per named scenario.
var scenarioRoot = filepath.Join("..", "..", "testdata", "differential")

// scenario is testdata/differential/<name>/scenario.json. Paths inside are
// relative to the scenario directory.
type scenario struct {
	Description string `json:"description"`
	Source      string `json:"source"`
	SectorSize  int64  `json:"sector_size,omitempty"` // default 512; other sizes run on loop devices
	Loop        bool   `json:"loop,omitempty"`        // run on loop devices even with 512-byte sectors
	Seed        string `json:"seed,omitempty"`        // --seed, default harness.Test58Seed
	Independent bool   `json:"independent,omitempty"` // every step starts from the base, not from the previous result
	Base        struct {
		Kind        string `json:"kind"` // repart | sfdisk | zero | absent
		Size        string `json:"size,omitempty"`
		Definitions string `json:"definitions,omitempty"` // kind=repart: built with systemd-repart --empty=create
		Script      string `json:"script,omitempty"`      // kind=sfdisk: sfdisk script
		// Data blobs and file systems put into the base afterwards, e.g. a
		// bootloader in unpartitioned space or a stale file system where a
		// new partition will go.
		Data        []baseData       `json:"data,omitempty"`
		FileSystems []baseFileSystem `json:"filesystems,omitempty"`
	} `json:"base"`
	Steps []scenarioStep `json:"steps"`
}

type scenarioStep struct {
	Name        string   `json:"name"`
	Grow        string   `json:"grow,omitempty"` // "+10G": add; "4G": set the size (sparse) before the run
	Definitions []string `json:"definitions"`
	Args        []string `json:"args,omitempty"`
	// Root is passed to both tools as --root=, relative to the scenario
	// directory (a tree with etc/os-release, etc/machine-id, ...).
	Root    string        `json:"root,omitempty"`
	NoRerun bool          `json:"no_rerun,omitempty"`
	Oracle  *oracleExpect `json:"oracle,omitempty"`
	// OracleFrom pins what the oracle does from a version on, where a
	// rule changed (keyed by that version: "254", "262"); Oracle holds
	// for the versions before the first key.
	OracleFrom map[string]*oracleExpect `json:"oracle_from,omitempty"`
	Ratio      *ratioCheck              `json:"ratio,omitempty"`
	// Deviation declares a deliberate difference from 252
	// (docs/compatibility.md); sprout is checked against it instead.
	Deviation *deviation `json:"deviation,omitempty"`
}

type baseData struct {
	Offset string `json:"offset"`
	Text   string `json:"text"`
}

type baseFileSystem struct {
	Offset string `json:"offset"`
	Size   string `json:"size"`
	Format string `json:"format"` // ext4 (written with mkfs.ext4 -E offset=)
	Label  string `json:"label,omitempty"`
}

// ratioCheck asserts size(A)/size(B) ≈ Want for partitions named A and B.
type ratioCheck struct {
	A         string  `json:"a"`
	B         string  `json:"b"`
	Want      float64 `json:"want"`
	Tolerance float64 `json:"tolerance"`
}

func (r *ratioCheck) check(t *harness.Table) error {
	size := map[string]uint64{}
	for _, p := range t.Partitions {
		size[p.Name] = p.Size
	}
	a, b := size[r.A], size[r.B]
	if a == 0 || b == 0 {
		return fmt.Errorf("partitions %q and %q not both present", r.A, r.B)
	}
	got := float64(a) / float64(b)
	if math.Abs(got-r.Want) > r.Tolerance*r.Want {
		return fmt.Errorf("%s:%s = %d:%d = %.4f, want %.4f ±%.1f%%", r.A, r.B, a, b, got, r.Want, 100*r.Tolerance)
	}
	return nil
}

func loadScenario(dir string) (*scenario, error) {
	data, err := os.ReadFile(filepath.Join(dir, "scenario.json"))
	if err != nil {
		return nil, err
	}
	sc := &scenario{}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(sc); err != nil {
		return nil, fmt.Errorf("%s/scenario.json: %w", dir, err)
	}
	if sc.SectorSize == 0 {
		sc.SectorSize = 512
	}
	if sc.SectorSize != 512 {
		sc.Loop = true
	}
	if sc.Seed == "" {
		sc.Seed = harness.Test58Seed
	}
	if len(sc.Steps) == 0 {
		return nil, fmt.Errorf("%s/scenario.json: no steps", dir)
	}
	return sc, nil
}

func TestScenarios(t *testing.T) {
	s := begin(t)
	entries, err := os.ReadDir(scenarioRoot)
	if err != nil {
		t.Fatalf("read scenarios: %v", err)
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() {
			n++
		}
	}
	if n == 0 {
		t.Fatalf("no scenarios under %s", scenarioRoot)
	}
	s.eachOracle(t, func(t *testing.T, s *suite) {
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			dir := filepath.Join(scenarioRoot, e.Name())
			t.Run(e.Name(), func(t *testing.T) {
				t.Parallel()
				sc, err := loadScenario(dir)
				if err != nil {
					t.Fatal(err)
				}
				if sc.Loop {
					harness.RequireRoot(t, "a scenario on loop devices")
					harness.RequireTools(t, "losetup")
				}
				s.acquire(t)
				s.runScenario(t, e.Name(), dir, sc)
			})
		}
	})
}

func (s *suite) runScenario(t *testing.T, name, dir string, sc *scenario) {
	ctx := context.Background()
	work := t.TempDir()
	absDir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	base, err := buildScenarioBase(ctx, sc, absDir, work)
	if err != nil {
		t.Fatalf("build base image: %v", err)
	}
	prev := base // "" when the base is absent
	for i, st := range sc.Steps {
		stepName := st.Name
		if stepName == "" {
			stepName = fmt.Sprintf("step%d", i+1)
		}
		stepDir := filepath.Join(work, stepName)
		if err := os.Mkdir(stepDir, 0o755); err != nil {
			t.Fatal(err)
		}
		from := prev
		if sc.Independent {
			from = base
		}
		c, err := scenarioCase(sc, st, absDir, stepDir, from, s.oracle.Version)
		if err != nil {
			t.Fatalf("%s: %v", stepName, err)
		}
		c.name = name + "/" + stepName
		c.repro = fmt.Sprintf("%s=%s go test ./tests/differential -run 'TestScenarios/%d/%s$/%s$' (definitions in testdata/differential/%s)",
			harness.EnvOracles, s.oracle.Name, s.oracle.Version, name, stepName, name)
		// Later steps start from the oracle's result, which stays valid
		// whatever sprout did; they stop only if there is no such result.
		var o *outcome
		t.Run(stepName, func(t *testing.T) { o = s.runAndReport(t, c, stepDir) })
		if o != nil && o.oracle != nil && o.oracle.final.ExitCode == 0 {
			prev = o.oracle.image
		} else if !sc.Independent && (o == nil || o.failures[catHarness] != nil) {
			t.Fatalf("step %s has no oracle result to build on", stepName)
		}
	}
}

// oracleAt is what the oracle of systemd version v must do in this step.
func (st scenarioStep) oracleAt(v int) *oracleExpect {
	want, from := st.Oracle, 0
	for k, e := range st.OracleFrom {
		if n, err := strconv.Atoi(k); err == nil && n <= v && n > from {
			want, from = e, n
		}
	}
	return want
}

// scenarioCase prepares a step's input (a copy of from, grown) in stepDir
// for the oracle of systemd version version.
func scenarioCase(sc *scenario, st scenarioStep, absDir, stepDir, from string, version int) (*diffCase, error) {
	c := &diffCase{
		sectorSize: sc.SectorSize,
		loop:       sc.Loop,
		repartSeed: sc.Seed,
		args:       slices.Clone(st.Args),
		rerun:      !st.NoRerun,
		oracleWant: st.oracleAt(version),
		deviation:  st.Deviation,
		input:      filepath.Join(stepDir, "input.img"),
	}
	if d := st.Deviation; d != nil && d.Before != 0 && version >= d.Before {
		c.deviation = nil
	}
	if st.Root != "" {
		c.args = append(c.args, "--root="+filepath.Join(absDir, st.Root))
	}
	for _, d := range st.Definitions {
		c.defDirs = append(c.defDirs, filepath.Join(absDir, d))
	}
	if st.Ratio != nil {
		c.checks = append(c.checks, tableCheck{name: fmt.Sprintf("ratio %s:%s", st.Ratio.A, st.Ratio.B), fn: st.Ratio.check})
	}
	desc := []string{sc.Description}
	if from == "" {
		c.absent = true
		c.input = filepath.Join(stepDir, "absent.img")
		desc = append(desc, "device file absent")
	} else {
		if err := harness.CopySparse(from, c.input); err != nil {
			return nil, err
		}
		size, err := harness.Size(c.input)
		if err != nil {
			return nil, err
		}
		if st.Grow != "" {
			newSize, err := growTo(size, st.Grow)
			if err != nil {
				return nil, err
			}
			if err := harness.Resize(c.input, newSize); err != nil {
				return nil, err
			}
			desc = append(desc, fmt.Sprintf("grown %s → %s", harness.FormatSize(size), harness.FormatSize(newSize)))
			size = newSize
		}
		desc = append(desc, fmt.Sprintf("image %s (%d bytes), %d-byte sectors", harness.FormatSize(size), size, sc.SectorSize))
	}
	if len(c.args) > 0 {
		desc = append(desc, "flags "+strings.Join(c.args, " "))
	}
	c.describe = strings.Join(desc, "; ")
	return c, nil
}

func growTo(size int64, spec string) (int64, error) {
	if rest, ok := strings.CutPrefix(spec, "+"); ok {
		n, err := harness.ParseSize(rest)
		return size + n, err
	}
	return harness.ParseSize(spec)
}

// buildScenarioBase makes the scenario's base image in work and returns its
// path ("" for an absent base).
func buildScenarioBase(ctx context.Context, sc *scenario, absDir, work string) (string, error) {
	img, err := buildBaseTable(ctx, sc, absDir, work)
	if err != nil || img == "" {
		return img, err
	}
	for _, fs := range sc.Base.FileSystems {
		off, err1 := harness.ParseSize(fs.Offset)
		size, err2 := harness.ParseSize(fs.Size)
		if err := errors.Join(err1, err2); err != nil {
			return "", err
		}
		if fs.Format != "ext4" {
			return "", fmt.Errorf("base file system %q: only ext4 is supported", fs.Format)
		}
		if _, err := harness.MustSucceed(ctx, "mkfs.ext4", "-q", "-F", "-L", fs.Label, "-E", fmt.Sprintf("offset=%d", off),
			img, strconv.FormatInt(size/1024, 10)+"k"); err != nil {
			return "", err
		}
	}
	if len(sc.Base.Data) > 0 {
		f, err := os.OpenFile(img, os.O_WRONLY, 0)
		if err != nil {
			return "", err
		}
		defer f.Close()
		for _, d := range sc.Base.Data {
			off, err := harness.ParseSize(d.Offset)
			if err != nil {
				return "", err
			}
			if _, err := f.WriteAt([]byte(d.Text), off); err != nil {
				return "", err
			}
		}
		if err := f.Close(); err != nil {
			return "", err
		}
	}
	return img, nil
}

func buildBaseTable(ctx context.Context, sc *scenario, absDir, work string) (string, error) {
	img := filepath.Join(work, "base.img")
	switch sc.Base.Kind {
	case "absent":
		return "", nil
	case "zero":
		size, err := harness.ParseSize(sc.Base.Size)
		if err != nil {
			return "", err
		}
		return img, harness.CreateSparse(img, size)
	case "sfdisk":
		size, err := harness.ParseSize(sc.Base.Size)
		if err != nil {
			return "", err
		}
		if err := harness.CreateSparse(img, size); err != nil {
			return "", err
		}
		script, err := os.ReadFile(filepath.Join(absDir, sc.Base.Script))
		if err != nil {
			return "", err
		}
		return img, sfdiskScript(ctx, sc, img, script)
	case "repart":
		if sc.Loop {
			return "", fmt.Errorf("base kind repart is not supported on loop devices")
		}
		_, err := harness.MustSucceed(ctx, harness.HostRepart, "--empty=create", "--size="+sc.Base.Size, "--dry-run=no",
			"--seed="+sc.Seed, "--definitions="+filepath.Join(absDir, sc.Base.Definitions), img)
		return img, err
	}
	return "", fmt.Errorf("unknown base kind %q", sc.Base.Kind)
}

// sfdiskScript applies an sfdisk script to img (through a loop device with
// the scenario's sector size when needed).
func sfdiskScript(ctx context.Context, sc *scenario, img string, script []byte) error {
	dev := img
	if sc.Loop {
		l, err := harness.AttachLoop(ctx, img, sc.SectorSize)
		if err != nil {
			return err
		}
		defer l.Detach(ctx)
		dev = l.Dev
	}
	res, err := harness.RunInput(ctx, script, "sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", dev)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("sfdisk %s: exit %d: %s", dev, res.ExitCode, res.Stderr)
	}
	return nil
}
