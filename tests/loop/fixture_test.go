package loop

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/parttype"
	"github.com/sprout-initrd/sprout/pkg/plan"
	"github.com/sprout-initrd/sprout/tests/harness"
	"golang.org/x/sys/unix"
)

// seed is the --seed of every run (the seed article's).
const seed = "0123456789abcdef0123456789abcdef"

const (
	mib    = int64(1) << 20
	tenGiB = int64(10) << 30
)

// sectorSizes are the logical sector sizes the tier covers.
var sectorSizes = []int{512, 1024, 2048, 4096}

// baseTools are the programs every test of the tier runs.
var baseTools = []string{"losetup", "partx", "delpart", "sfdisk", "blkid", "blockdev", "mount", "umount",
	"e2fsck", "mkfs.ext4", "mkfs.vfat", harness.HostRepart}

// begin checks what every test needs: root, loop devices, the tools, and
// a sprout binary. Missing pieces skip the test, or fail it when
// SPROUT_REQUIRE_ROOT=1 (or SPROUT_REQUIRE_TOOLS=1) says they must be there.
func begin(t *testing.T, extraTools ...string) {
	t.Helper()
	harness.RequireLoopDevices(t, "loop devices")
	harness.RequireTools(t, append(slices.Clone(baseTools), extraTools...)...)
	if theTier.setupErr != nil {
		t.Fatalf("tier setup: %v", theTier.setupErr)
	}
}

// testdata returns the absolute path of a directory under testdata/.
func testdata(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// loopDisk is a loop device over a sparse backing file.
type loopDisk struct {
	Dev        string // /dev/loopN
	Backing    string
	SectorSize int
}

type attachOptions struct {
	ReadOnly bool
	// PartScan attaches with -P, as systemd-repart needs to tell the kernel.
	PartScan bool
}

// attach attaches backing to a free loop device. At cleanup the kernel
// partitions are deleted first (a loop device without -P keeps BLKPG
// partitions after detaching), then the device is detached.
func attach(t *testing.T, backing string, sectorSize int, opts attachOptions) *loopDisk {
	t.Helper()
	dev, err := losetup(backing, sectorSize, opts)
	if err != nil {
		t.Fatal(err)
	}
	d := &loopDisk{Dev: dev, Backing: backing, SectorSize: sectorSize}
	t.Cleanup(func() {
		if err := d.destroy(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return d
}

func losetup(backing string, sectorSize int, opts attachOptions) (string, error) {
	args := []string{"losetup", "--find", "--show", "--sector-size", strconv.Itoa(sectorSize)}
	if opts.ReadOnly {
		args = append(args, "--read-only")
	}
	if opts.PartScan {
		args = append(args, "--partscan")
	}
	args = append(args, backing)
	var err error
	// sprout and systemd-repart attach loop devices of their own; losetup
	// can lose the race for a free one and then fails.
	for attempt := range 10 {
		var res harness.Result
		if res, err = harness.MustSucceed(context.Background(), args...); err == nil {
			return strings.TrimSpace(res.Stdout), nil
		}
		time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
	}
	return "", err
}

func (d *loopDisk) destroy() error {
	var errs []string
	for n := range d.kernelPartitions() {
		// An unmount releases the partition asynchronously now and then;
		// give it a moment before calling the partition stuck.
		var err error
		for try := 0; try < 40; try++ {
			if _, err = harness.MustSucceed(context.Background(), "delpart", d.Dev, strconv.Itoa(n)); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	if _, err := harness.MustSucceed(context.Background(), "losetup", "--detach", d.Dev); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: %s", d.Dev, strings.Join(errs, "; "))
	}
	return nil
}

// node is the device node of partition n.
func (d *loopDisk) node(n int) string { return fmt.Sprintf("%sp%d", d.Dev, n) }

// kernelPart is a partition as sysfs shows it; Start and Size are in
// 512-byte units whatever the logical sector size.
type kernelPart struct{ Start, Size int64 }

// kernelPartitions reads the kernel's partitions of the disk from sysfs.
func (d *loopDisk) kernelPartitions() map[int]kernelPart {
	name := filepath.Base(d.Dev)
	parts := map[int]kernelPart{}
	dirs, _ := filepath.Glob(filepath.Join("/sys/class/block", name, name+"p*"))
	for _, dir := range dirs {
		n, err1 := readInt(filepath.Join(dir, "partition"))
		start, err2 := readInt(filepath.Join(dir, "start"))
		size, err3 := readInt(filepath.Join(dir, "size"))
		if err1 == nil && err2 == nil && err3 == nil {
			parts[int(n)] = kernelPart{Start: start, Size: size}
		}
	}
	return parts
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// addNodes makes kernel partitions of the table on disk (partx --add).
func (d *loopDisk) addNodes(t *testing.T) {
	t.Helper()
	mustRun(t, "partx", "--add", d.Dev)
}

// hash is a hash of every byte of the device: the page cache of the loop
// device is flushed to the backing file, whose data extents are hashed.
func (d *loopDisk) hash(t *testing.T) string {
	t.Helper()
	mustRun(t, "blockdev", "--flushbufs", d.Dev)
	h, err := harness.ContentHash(d.Backing)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// rangeHash hashes the bytes of partition p of table tb.
func (d *loopDisk) rangeHash(t *testing.T, tb *harness.Table, p harness.Partition) string {
	t.Helper()
	mustRun(t, "blockdev", "--flushbufs", d.Dev)
	h, err := harness.RangeHash(d.Backing, p.StartBytes(tb), p.SizeBytes(tb))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// table reads the partition table with sfdisk --json.
func (d *loopDisk) table(t *testing.T) *harness.Table {
	t.Helper()
	tb, err := harness.ReadTable(context.Background(), d.Dev)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// probe runs low-level blkid on a node: TYPE, LABEL, UUID and the
// PART_ENTRY_* values of its partition table entry.
func probe(t *testing.T, node string) map[string]string {
	t.Helper()
	out := mustRun(t, "blkid", "--probe", "--output", "export", node)
	m := map[string]string{}
	for line := range strings.SplitSeq(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

func mustRun(t *testing.T, argv ...string) string {
	t.Helper()
	res, err := harness.MustSucceed(context.Background(), argv...)
	if err != nil {
		t.Fatal(err)
	}
	return res.Stdout
}

// mount mounts an ext4 node (with extra -o options) at a fresh directory.
// The returned function unmounts it now; otherwise cleanup does.
func mount(t *testing.T, node string, options ...string) (dir string, unmount func()) {
	t.Helper()
	dir = t.TempDir()
	args := []string{"mount", "-t", "ext4"}
	if len(options) > 0 {
		args = append(args, "-o", strings.Join(options, ","))
	}
	mustRun(t, append(args, node, dir)...)
	mounted := true
	unmount = func() {
		if !mounted {
			return
		}
		mounted = false
		if _, err := harness.MustSucceed(context.Background(), "umount", dir); err != nil {
			t.Errorf("umount: %v", err)
		}
	}
	t.Cleanup(unmount)
	return dir, unmount
}

// holdExclusive opens node O_EXCL (as a mount or a RAID member would hold
// it) until cleanup.
func holdExclusive(t *testing.T, node string) {
	t.Helper()
	fd, err := unix.Open(node, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s exclusively: %v", node, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
}

// baseImage returns the cached base image of a kind ("seed", "grow") for
// a sector size: a blank sparse file partitioned by systemd-repart 252 on
// a loop device of that sector size, from testdata/<kind>-base.d. The
// caller copies it before use.
func baseImage(t *testing.T, kind string, sectorSize int) string {
	t.Helper()
	sizes := map[string]int64{"seed": 545 * mib, "grow": 512 * mib}
	tr := theTier
	tr.mu.Lock()
	defer tr.mu.Unlock()
	key := fmt.Sprintf("%s/%d", kind, sectorSize)
	if img, ok := tr.bases[key]; ok {
		return img
	}
	img := filepath.Join(tr.scratch, fmt.Sprintf("%s-%d.img", kind, sectorSize))
	if err := harness.CreateSparse(img, sizes[kind]); err != nil {
		t.Fatal(err)
	}
	dev, err := losetup(img, sectorSize, attachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = harness.MustSucceed(context.Background(), harness.HostRepart, "--empty=require", "--dry-run=no",
		"--seed="+seed, "--definitions="+testdata(t, kind+"-base.d"), dev)
	if _, derr := harness.MustSucceed(context.Background(), "losetup", "--detach", dev); err == nil {
		err = derr
	}
	if err != nil {
		t.Fatalf("build %s base image: %v", key, err)
	}
	tr.bases[key] = img
	return img
}

// grownDisk copies the base image of a kind, grows the copy by grow bytes
// (a small image dd'ed onto a bigger disk) and attaches it.
func grownDisk(t *testing.T, kind string, sectorSize int, grow int64, opts attachOptions) *loopDisk {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := harness.CopySparse(baseImage(t, kind, sectorSize), img); err != nil {
		t.Fatal(err)
	}
	size, err := harness.Size(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := harness.Resize(img, size+grow); err != nil {
		t.Fatal(err)
	}
	return attach(t, img, sectorSize, opts)
}

// seedDisk is the seed scenario's disk: ESP + store, grown by 10 GiB.
func seedDisk(t *testing.T, sectorSize int) *loopDisk {
	t.Helper()
	return grownDisk(t, "seed", sectorSize, tenGiB, attachOptions{})
}

// sprout runs the binary under test; a failure to start it fails the test.
func sprout(t *testing.T, args ...string) harness.Result {
	t.Helper()
	res, err := harness.Run(context.Background(), nil, append([]string{theTier.sprout}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// sproutArgs are the arguments of a real run with the given definitions.
func sproutArgs(t *testing.T, d *loopDisk, defs string) []string {
	return []string{"--dry-run=no", "--seed=" + seed, "--definitions=" + testdata(t, defs), d.Dev}
}

// apply runs sprout --dry-run=no and requires success.
func apply(t *testing.T, d *loopDisk, defs string) harness.Result {
	t.Helper()
	res := sprout(t, sproutArgs(t, d, defs)...)
	if res.ExitCode != 0 {
		t.Fatalf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", res.CommandLine(), res.ExitCode, res.Stdout, res.Stderr)
	}
	return res
}

// refused runs sprout --dry-run=no on dev and requires it to fail with a
// message containing every one of want.
func refused(t *testing.T, dev string, defs string, want ...string) harness.Result {
	t.Helper()
	res := sprout(t, "--dry-run=no", "--seed="+seed, "--definitions="+testdata(t, defs), dev)
	if res.ExitCode == 0 {
		t.Fatalf("%s succeeded, want a refusal\nstderr:\n%s", res.CommandLine(), res.Stderr)
	}
	for _, w := range want {
		if !strings.Contains(res.Stderr, w) {
			t.Errorf("refusal message lacks %q:\n%s", w, res.Stderr)
		}
	}
	return res
}

// plannedRow is one row of sprout's JSON report.
type plannedRow struct {
	Label    string `json:"label"`
	Offset   int64  `json:"offset"`
	RawSize  int64  `json:"raw_size"`
	Activity string `json:"activity"`
}

// planned returns the rows of a dry run, by label.
func planned(t *testing.T, d *loopDisk, defs string) map[string]plannedRow {
	t.Helper()
	res := sprout(t, "--dry-run=yes", "--json=short", "--seed="+seed, "--definitions="+testdata(t, defs), d.Dev)
	if res.ExitCode != 0 {
		t.Fatalf("%s: exit %d: %s", res.CommandLine(), res.ExitCode, res.Stderr)
	}
	var rows []plannedRow
	if err := json.Unmarshal([]byte(res.Stdout), &rows); err != nil {
		t.Fatalf("parse %s: %v\n%s", res.CommandLine(), err, res.Stdout)
	}
	m := map[string]plannedRow{}
	for _, r := range rows {
		m[r.Label] = r
	}
	return m
}

// derived is what the planner's formulas give for a new partition of a
// type that is the first of its type in the partition list.
type derived struct {
	PartUUID, FSUUID uuid.UUID
}

func derive(t *testing.T, typeName string) derived {
	t.Helper()
	typ, ok := parttype.Lookup(typeName)
	if !ok {
		t.Fatalf("unknown type %s", typeName)
	}
	part := plan.PartitionUUID(uuid.MustParse(seed), typ, 0)
	return derived{PartUUID: part, FSUUID: plan.FileSystemUUID(part)}
}

// partitionByName finds a partition of tb by its GPT name.
func partitionByName(t *testing.T, tb *harness.Table, name string) harness.Partition {
	t.Helper()
	for _, p := range tb.Partitions {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no partition named %q in\n%s", name, tb)
	return harness.Partition{}
}
