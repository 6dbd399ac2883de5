package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/fstype"
)

const (
	seedUUID = "0123456789abcdef0123456789abcdef"
	gib      = int64(1) << 30
	tib      = int64(1) << 40
)

// sizeName spells a disk size the way the table does.
func sizeName(n int64) string {
	if n >= tib {
		return fmt.Sprintf("%d TiB", n/tib)
	}
	return fmt.Sprintf("%d GiB", n/gib)
}

// setup makes the factory image of the seed scenario and the definition
// directories every section uses.
func (b *bench) setup() error {
	seed := filepath.Join(b.cfg.repo, "testdata", "differential", "seed-article")
	b.defsExt4 = filepath.Join(seed, "defs")
	b.base = filepath.Join(b.work, "base.img")
	// The factory image: ESP (vfat, 200 MiB) and the store, 545 MiB in all,
	// made by systemd-repart from the scenario's base.d.
	if out, err := exec.Command(b.repart.path, "--empty=create", "--size=545M", "--dry-run=no",
		"--definitions="+filepath.Join(seed, "base.d"), "--seed="+seedUUID, b.base).CombinedOutput(); err != nil {
		return fmt.Errorf("making the factory image: %w\n%s", err, out)
	}
	// The same home and var, without Format=.
	b.defsPlain = filepath.Join(b.work, "defs-plain")
	if err := os.MkdirAll(b.defsPlain, 0o755); err != nil {
		return err
	}
	for _, name := range []string{"home.conf", "var.conf"} {
		data, err := os.ReadFile(filepath.Join(b.defsExt4, name))
		if err != nil {
			return err
		}
		var kept []string
		for _, line := range strings.Split(string(data), "\n") {
			if !strings.HasPrefix(line, "Format=") {
				kept = append(kept, line)
			}
		}
		if err := os.WriteFile(filepath.Join(b.defsPlain, name), []byte(strings.Join(kept, "\n")), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// grow copies the factory image to name (sparsely) and grows the copy to
// size bytes: the image dd'ed onto a bigger disk.
func (b *bench) grow(name string, size int64) (string, error) {
	dst := filepath.Join(b.work, name)
	os.Remove(dst)
	if out, err := exec.Command("cp", "--sparse=always", b.base, dst).CombinedOutput(); err != nil {
		return "", fmt.Errorf("cp: %w: %s", err, out)
	}
	if err := os.Truncate(dst, size); err != nil {
		return "", fmt.Errorf("growing %s to %s: %w", dst, sizeName(size), err)
	}
	return dst, nil
}

func copySparse(src, dst string) error {
	os.Remove(dst)
	if out, err := exec.Command("cp", "--sparse=always", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("cp: %w: %s", err, out)
	}
	return nil
}

func runArgs(dryRun bool, defs, image string) []string {
	d := "no"
	if dryRun {
		d = "yes"
	}
	return []string{"--dry-run=" + d, "--definitions=" + defs, "--seed=" + seedUUID, "--no-pager", image}
}

// noop times the every-later-boot case: the seed image after its first
// boot (made by systemd-repart), each tool on its own identical copy.
func (b *bench) noop() error {
	golden, err := b.grow("noop-golden.img", 10*gib)
	if err != nil {
		return err
	}
	if _, err := b.timeOnce(b.repart.path, runArgs(false, b.defsExt4, golden)...); err != nil {
		return err
	}
	a, r := filepath.Join(b.work, "noop-sprout.img"), filepath.Join(b.work, "noop-repart.img")
	for _, p := range []string{a, r} {
		if err := copySparse(golden, p); err != nil {
			return err
		}
	}
	before := map[string]fingerprint{}
	for _, p := range []string{a, r} {
		if before[p], err = fingerprintOf(p); err != nil {
			return err
		}
	}
	n := b.runs(150)
	b.progress("no-op: %d runs each", n)
	p, err := b.alternate(n, func(int) ([]string, []string, error) {
		return runArgs(false, b.defsExt4, a), runArgs(false, b.defsExt4, r), nil
	}, nil, nil)
	if err != nil {
		return err
	}
	// The same runs the way the initrd runs sprout: sprout.service and the
	// dracut hook set GOMAXPROCS=1 (one scheduler thread; docs/benchmarks.md).
	b.progress("no-op with GOMAXPROCS=1 (as sprout.service runs it): %d runs each", n)
	b.sproutEnv = []string{"GOMAXPROCS=1"}
	unit, err := b.alternate(n, func(int) ([]string, []string, error) {
		return runArgs(false, b.defsExt4, a), runArgs(false, b.defsExt4, r), nil
	}, nil, nil)
	b.sproutEnv = nil
	if err != nil {
		return err
	}
	goRows, goNote, err := b.goFloor(runArgs(false, b.defsExt4, a), runArgs(false, b.defsExt4, r))
	if err != nil {
		return err
	}
	verdict := ""
	for _, path := range []string{a, r} {
		after, err := fingerprintOf(path)
		if err != nil {
			return err
		}
		if after != before[path] {
			verdict = fmt.Sprintf("FAILED: %s changed during the no-op runs", filepath.Base(path))
			b.failures++
		}
	}
	b.addTiming("No-op run (every later boot), seed layout on 10 GiB", p, 0.25, verdict)
	b.noteSpread("no-op", p)
	b.addTiming("No-op run as sprout.service runs it (`GOMAXPROCS=1` for sprout only)", unit, 0.25, verdict)
	b.noteSpread("no-op (GOMAXPROCS=1)", unit)
	if verdict != "" {
		goRows[0].result = verdict
	}
	b.rows = append(b.rows, goRows...)
	b.notes = append(b.notes, goNote)

	// The floor: how much of that is starting the process at all.
	n = b.runs(100)
	p, err = b.alternate(n, func(int) ([]string, []string, error) {
		return []string{"--version"}, []string{"--version"}, nil
	}, nil, nil)
	if err != nil {
		return err
	}
	b.addTiming("Process start only: `--version`", p, 0, "")

	// Below this nothing can go: fork, exec and wait of a program that
	// does nothing, measured the same way.
	var floor []result
	for range n {
		r, err := b.timeOnce("/bin/true")
		if err != nil {
			return err
		}
		floor = append(floor, r)
	}
	b.notes = append(b.notes, fmt.Sprintf("Harness floor: fork + exec + wait of /bin/true takes %s (median of %d); it is inside every wall time above.", ms(median(floor)), n))
	return nil
}

// fingerprint identifies an image's content where a partition table tool
// writes (first and last MiB) and its modification time.
type fingerprint struct {
	mtime      time.Time
	size       int64
	head, tail [32]byte
}

func fingerprintOf(path string) (fingerprint, error) {
	f, err := os.Open(path)
	if err != nil {
		return fingerprint{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fingerprint{}, err
	}
	fp := fingerprint{mtime: st.ModTime(), size: st.Size()}
	buf := make([]byte, 1<<20)
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return fp, err
	}
	fp.head = sha256.Sum256(buf)
	if _, err := f.ReadAt(buf, st.Size()-int64(len(buf))); err != nil && !errors.Is(err, io.EOF) {
		return fp, err
	}
	fp.tail = sha256.Sum256(buf)
	return fp, nil
}

// firstRuns times the first boot: the factory image grown to each size,
// home and var created, with and without Format=ext4.
func (b *bench) firstRuns() error {
	cases := []struct {
		size   int64
		format bool
		runs   int
		target float64
	}{
		{10 * gib, true, 15, 0.6}, {tib, true, 9, 0.6}, {16 * tib, true, 5, 0},
		{10 * gib, false, 30, 0.6}, {tib, false, 30, 0.6}, {16 * tib, false, 30, 0},
	}
	for _, c := range cases {
		defs, what := b.defsPlain, "no Format="
		if c.format {
			defs, what = b.defsExt4, "Format=ext4"
		}
		n := b.runs(c.runs)
		b.progress("first run, %s, %s: %d runs each", sizeName(c.size), what, n)
		var a, r string
		p, err := b.alternate(n, func(int) ([]string, []string, error) {
			var err error
			if a, err = b.grow("first-sprout.img", c.size); err != nil {
				return nil, nil, err
			}
			if r, err = b.grow("first-repart.img", c.size); err != nil {
				return nil, nil, err
			}
			return runArgs(false, defs, a), runArgs(false, defs, r), nil
		}, func() error {
			return errors.Join(os.Remove(a), os.Remove(r))
		}, func() error {
			return sameResult(a, r, c.format)
		})
		verdict := ""
		if err != nil {
			if b.ctx.Err() != nil {
				return err
			}
			verdict = "FAILED: " + firstLine(err.Error())
			b.failures++
			b.notes = append(b.notes, fmt.Sprintf("First run %s, %s failed: %v", sizeName(c.size), what, err))
		}
		b.addTiming(fmt.Sprintf("First run, %s, home+var %s", sizeName(c.size), what), p, c.target, verdict)
	}
	return b.mkfsPaths(tib)
}

// sameResult checks that both tools did the same work: equal partition
// tables (sfdisk's view) and, with Format=, ext4 in both new partitions.
func sameResult(a, r string, format bool) error {
	ta, err := sfdiskTable(a)
	if err != nil {
		return err
	}
	tr, err := sfdiskTable(r)
	if err != nil {
		return err
	}
	if !ta.equal(tr) {
		return fmt.Errorf("the tables differ:\nsprout:         %+v\nsystemd-repart: %+v", ta, tr)
	}
	if len(ta.Partitions) != 4 {
		return fmt.Errorf("expected 4 partitions, found %d", len(ta.Partitions))
	}
	if !format {
		return nil
	}
	for _, img := range []string{a, r} {
		for _, p := range ta.Partitions[2:] {
			out, err := exec.Command("blkid", "-p", "-O", fmt.Sprint(p.Start*ta.SectorSize), "-s", "TYPE", "-o", "value", img).Output()
			if got := strings.TrimSpace(string(out)); err != nil || got != "ext4" {
				return fmt.Errorf("%s: partition at sector %d holds %q, not ext4 (%v)", filepath.Base(img), p.Start, got, err)
			}
		}
	}
	return nil
}

type sfdiskDump struct {
	ID         string `json:"id"`
	FirstLBA   int64  `json:"firstlba"`
	LastLBA    int64  `json:"lastlba"`
	SectorSize int64  `json:"sectorsize"`
	Partitions []struct {
		Start, Size      int64
		Type, UUID, Name string
		Attrs            string
	} `json:"partitions"`
}

func (d sfdiskDump) equal(o sfdiskDump) bool {
	a, _ := json.Marshal(d)
	b, _ := json.Marshal(o)
	return bytes.Equal(a, b)
}

func sfdiskTable(img string) (sfdiskDump, error) {
	out, err := exec.Command("sfdisk", "--json", img).Output()
	if err != nil {
		return sfdiskDump{}, fmt.Errorf("sfdisk --json %s: %w", img, err)
	}
	var v struct {
		PartitionTable sfdiskDump `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return sfdiskDump{}, err
	}
	return v.PartitionTable, nil
}

// planTimes times dry runs: the cost of reading the disk and planning,
// against the disk size and against the number of definitions.
//
// systemd-repart 252 cannot plan the first boot of a grown image in a dry
// run (libfdisk moves the backup GPT to the end only when it may write,
// so the dry run sees no free space and fails). The images are therefore
// grown with the backup GPT already at the end (sfdisk --relocate), and
// both tools plan home and var on them.
func (b *bench) planTimes() error {
	relocated := func(name string, size int64) (string, error) {
		p, err := b.grow(name, size)
		if err != nil {
			return "", err
		}
		if out, err := exec.Command("sfdisk", "-q", "--relocate", "gpt-bak-std", p).CombinedOutput(); err != nil {
			return "", fmt.Errorf("sfdisk --relocate: %w: %s", err, out)
		}
		return p, nil
	}
	var bySize []pair
	sizes := []int64{gib, 10 * gib, tib, 16 * tib, 64 * tib}
	for _, size := range sizes {
		a, err := relocated("plan-sprout.img", size)
		if err != nil {
			return err
		}
		r := filepath.Join(b.work, "plan-repart.img")
		if err := copySparse(a, r); err != nil {
			return err
		}
		n := b.runs(40)
		b.progress("dry run, %s: %d runs each", sizeName(size), n)
		p, err := b.alternate(n, func(int) ([]string, []string, error) {
			return runArgs(true, b.defsExt4, a), runArgs(true, b.defsExt4, r), nil
		}, nil, nil)
		if err != nil {
			return err
		}
		bySize = append(bySize, p)
		b.addTiming(fmt.Sprintf("Dry run (read + plan), 2 definitions, %s", sizeName(size)), p, 0, "")
	}
	b.addGrowth("Dry-run cost, 64 TiB ÷ 1 GiB", bySize[0], bySize[len(bySize)-1])

	for _, n := range []int{1, 8, 32, 100} {
		dir := filepath.Join(b.work, fmt.Sprintf("defs-%d", n))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for i := range n {
			// srv, not linux-generic: that type would claim the store.
			conf := fmt.Sprintf("[Partition]\nType=srv\nLabel=part-%d\nFormat=ext4\nWeight=%d\n", i, 100+10*i)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d-part.conf", i)), []byte(conf), 0o644); err != nil {
				return err
			}
		}
		a, err := relocated("plan-sprout.img", tib)
		if err != nil {
			return err
		}
		r := filepath.Join(b.work, "plan-repart.img")
		if err := copySparse(a, r); err != nil {
			return err
		}
		runs := b.runs(40)
		b.progress("dry run, %d definitions: %d runs each", n, runs)
		p, err := b.alternate(runs, func(int) ([]string, []string, error) {
			return runArgs(true, dir, a), runArgs(true, dir, r), nil
		}, nil, nil)
		if err != nil {
			return err
		}
		noun := "definitions"
		if n == 1 {
			noun = "definition"
		}
		b.addTiming(fmt.Sprintf("Dry run (read + plan), %d %s, 1 TiB", n, noun), p, 0, "")
	}
	return errors.Join(os.Remove(filepath.Join(b.work, "plan-sprout.img")), os.Remove(filepath.Join(b.work, "plan-repart.img")))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// mkfsPaths times the same mke2fs command line on the same range of the
// same image two ways: in place on the file (-E offset=, what sprout does
// with image files) and through a loop device over the range (what
// systemd-repart does, with direct I/O as it sets it up). It shows how much of the first-run difference is
// the I/O path rather than the tool: on a file mke2fs zeroes with
// fallocate (holes), through a loop device on tmpfs it writes zeros.
func (b *bench) mkfsPaths(size int64) error {
	img, err := b.grow("mkfs.img", size)
	if err != nil {
		return err
	}
	defer os.Remove(img)
	if _, err := b.timeOnce(b.sprout.path, runArgs(false, b.defsPlain, img)...); err != nil {
		return err
	}
	t, err := sfdiskTable(img)
	if err != nil {
		return err
	}
	if len(t.Partitions) != 4 {
		return fmt.Errorf("expected 4 partitions, found %d", len(t.Partitions))
	}
	home := t.Partitions[2]
	off, n := home.Start*t.SectorSize, home.Size*t.SectorSize
	req := fstype.Request{Format: "ext4", Label: "home", UUID: uuid.MustParse("262afe25-c985-4002-86e6-146a18a7febd")}
	ext4, _ := fstype.Lookup("ext4")
	if ext4.InPlaceArgs == nil {
		return errors.New("fstype: ext4 cannot be made in place")
	}
	inPlace := ext4.InPlaceArgs(req, img, off, n)
	var file, loop []result
	for range b.runs(3) {
		r, err := b.timeOnce(inPlace[0], inPlace[1:]...)
		if err != nil {
			return err
		}
		file = append(file, r)
		out, err := exec.Command("losetup", "--find", "--show", "--direct-io=on", "--offset", fmt.Sprint(off), "--sizelimit", fmt.Sprint(n), img).Output()
		if err != nil {
			return fmt.Errorf("losetup: %w", err)
		}
		node := strings.TrimSpace(string(out))
		args := ext4.Args(req, node)
		r, err = b.timeOnce(args[0], args[1:]...)
		if derr := exec.Command("losetup", "-d", node).Run(); err == nil && derr != nil {
			err = fmt.Errorf("losetup -d %s: %w", node, derr)
		}
		if err != nil {
			return err
		}
		loop = append(loop, r)
	}
	b.notes = append(b.notes, fmt.Sprintf("The I/O path, not the tool, explains most of the Format=ext4 gap: the same mke2fs command for the %s home partition (%s) takes %s in place on the image file and %s through a loop device over its range (medians of %d).",
		sizeName(size), bytesStr(n), ms(median(file)), ms(median(loop)), len(file)))
	return nil
}
