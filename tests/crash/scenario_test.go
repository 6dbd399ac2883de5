package crash

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// scenarioRoot holds one directory per scenario.
var scenarioRoot = "testdata"

// scenario is testdata/<name>/scenario.json.
type scenario struct {
	Name        string `json:"-"`
	Dir         string `json:"-"`
	Description string `json:"description"`
	SectorSize  int64  `json:"sector_size"`
	Size        string `json:"size"`        // the image as built
	Base        string `json:"base"`        // sfdisk script that builds it
	Grow        string `json:"grow"`        // "+1G": the bigger disk it is copied onto
	Seed        string `json:"seed"`        // --seed
	Definitions string `json:"definitions"` // --definitions, relative to the scenario
	// New lists the partitions the run adds, by label, and what their
	// file systems must be.
	New []struct {
		Name   string `json:"name"`
		Format string `json:"format"` // ext4, vfat or swap
	} `json:"new"`
	// Grown lists existing partitions (by label) whose entry the run grows.
	Grown []string `json:"grown,omitempty"`
	// LogWrites also runs the scenario in the dm-log-writes tier.
	LogWrites bool `json:"log_writes,omitempty"`
	// FactoryReset lists existing partitions (by label) that the run, with
	// --factory-reset=yes, erases and creates anew (they are also in New).
	// The first table written is then the relocated old table WITHOUT
	// them, as sfdisk makes it (--relocate, then --delete).
	FactoryReset []string `json:"factory_reset,omitempty"`
}

func loadScenario(dir string) (*scenario, error) {
	data, err := os.ReadFile(filepath.Join(dir, "scenario.json"))
	if err != nil {
		return nil, err
	}
	sc := &scenario{Name: filepath.Base(dir), Dir: dir}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(sc); err != nil {
		return nil, fmt.Errorf("%s/scenario.json: %w", dir, err)
	}
	switch {
	case sc.SectorSize != 512 && sc.SectorSize != 4096:
		return nil, fmt.Errorf("%s: sector_size %d, want 512 or 4096", dir, sc.SectorSize)
	case sc.Size == "" || sc.Base == "" || !strings.HasPrefix(sc.Grow, "+") || sc.Seed == "" || sc.Definitions == "":
		return nil, fmt.Errorf("%s: size, base, grow (+N), seed and definitions are required", dir)
	case len(sc.New) == 0:
		return nil, fmt.Errorf("%s: no new partitions: nothing would be formatted", dir)
	}
	for _, name := range sc.FactoryReset {
		found := false
		for _, n := range sc.New {
			found = found || n.Name == name
		}
		if !found {
			return nil, fmt.Errorf("%s: factory-reset partition %q is not listed in new", dir, name)
		}
	}
	for _, n := range sc.New {
		switch n.Format {
		case "ext4", "vfat", "swap":
		default:
			return nil, fmt.Errorf("%s: new partition %q: format %q is not checked by this tier", dir, n.Name, n.Format)
		}
	}
	return sc, nil
}

func (sc *scenario) definitionsDir() (string, error) {
	return filepath.Abs(filepath.Join(sc.Dir, sc.Definitions))
}

// buildBase writes the scenario's image — the sfdisk script applied on a
// loop device with the scenario's sector size, every partition marked
// with a pattern — and grows it like a disk it was dd'ed onto.
func buildBase(ctx context.Context, sc *scenario, dir string) (string, error) {
	img := filepath.Join(dir, "base.img")
	size, err := harness.ParseSize(sc.Size)
	if err != nil {
		return "", err
	}
	grow, err := harness.ParseSize(strings.TrimPrefix(sc.Grow, "+"))
	if err != nil {
		return "", err
	}
	if err := harness.CreateSparse(img, size); err != nil {
		return "", err
	}
	script, err := os.ReadFile(filepath.Join(sc.Dir, sc.Base))
	if err != nil {
		return "", err
	}
	loop, err := harness.AttachLoop(ctx, img, sc.SectorSize)
	if err != nil {
		return "", err
	}
	res, err := harness.RunInput(ctx, script, "sfdisk", "-q", "--no-reread", "--no-tell-kernel", loop.Dev)
	if err == nil && res.ExitCode != 0 {
		err = fmt.Errorf("sfdisk %s < %s: exit %d: %s", loop.Dev, sc.Base, res.ExitCode, res.Stderr)
	}
	var tbl *harness.Table
	if err == nil {
		tbl, err = harness.ReadTable(ctx, loop.Dev)
	}
	if derr := loop.Detach(ctx); err == nil {
		err = derr
	}
	if err != nil {
		return "", err
	}
	for _, p := range tbl.Partitions {
		if err := markPartition(img, p.StartBytes(tbl), p.SizeBytes(tbl), p.Entry); err != nil {
			return "", err
		}
	}
	return img, harness.Resize(img, size+grow)
}

// markPartition fills the first and last MiB of a partition and 64 KiB in
// every 16 MiB with bytes that depend on the partition and the position,
// so that a write into it, or a shifted copy of it, changes its hash. (The
// rest stays a hole to keep copies cheap; writes there are caught by the
// write trace, which must never touch an existing partition.)
func markPartition(img string, off, size int64, entry int) error {
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	put := func(at, n int64) error {
		n = min(n, off+size-at)
		if n <= 0 {
			return nil
		}
		buf := make([]byte, 0, n)
		var ctr [16]byte
		for i := int64(0); int64(len(buf)) < n; i++ {
			binary.LittleEndian.PutUint64(ctr[:], uint64(at)+uint64(i))
			binary.LittleEndian.PutUint64(ctr[8:], uint64(entry))
			sum := sha256.Sum256(ctr[:])
			buf = append(buf, sum[:]...)
		}
		_, err := f.WriteAt(buf[:n], at)
		return err
	}
	const mib = 1 << 20
	if err := put(off, mib); err != nil {
		return err
	}
	for at := off + 16*mib; at < off+size-mib; at += 16 * mib {
		if err := put(at, 64<<10); err != nil {
			return err
		}
	}
	if err := put(max(off, off+size-mib), mib); err != nil {
		return err
	}
	return f.Close()
}
