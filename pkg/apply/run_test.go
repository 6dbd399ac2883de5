package apply_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/apply"
	"github.com/sprout-initrd/sprout/pkg/blockdev"
	"github.com/sprout-initrd/sprout/pkg/gpt"
	"github.com/sprout-initrd/sprout/pkg/gpt/gpttest"
	"github.com/sprout-initrd/sprout/pkg/plan"
	"github.com/sprout-initrd/sprout/pkg/repartd"
	"golang.org/x/sys/unix"
)

// These tests run apply.Run on image files through a Disk whose writer
// records every write, zeroing, sync and discard, and a fake mkfs that
// records its calls.

const (
	mib       = int64(1) << 20
	imageSize = 64 * mib // the image as built
	diskSize  = 1 << 30  // the disk it was written to
)

var seed = uuid.MustParse("0123456789abcdef0123456789abcdef")

// event is one thing the run did to the disk: "write", "sync", "discard"
// or "mkfs" (the fake runner).
type event struct {
	kind      string
	off, size int64
}

func (e event) String() string { return fmt.Sprintf("%s@%d+%d", e.kind, e.off, e.size) }

// recorder wraps the device and logs what reaches it. After crashAfter
// table writes (writes outside the new partitions) it fails every write:
// the run stops there, as if the power went. New partitions are formatted
// concurrently, so the log is guarded by mu.
type recorder struct {
	blockdev.Device
	mu         sync.Mutex
	events     []event
	newRanges  [][2]int64
	crashAfter int // -1: never
	tableDone  int
}

var errPowerCut = errors.New("simulated power cut")

func (r *recorder) record(e event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) WriteAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	if !r.inNew(off, int64(len(p))) {
		if r.crashAfter >= 0 && r.tableDone >= r.crashAfter {
			r.mu.Unlock()
			return 0, errPowerCut
		}
		r.tableDone++
	}
	r.events = append(r.events, event{"write", off, int64(len(p))})
	r.mu.Unlock()
	return r.Device.WriteAt(p, off)
}

// ZeroRange is recorded as what production does (a hole in an image
// file, BLKZEROOUT on a disk), and counts like a write for the power cut.
func (r *recorder) ZeroRange(off, n int64) error {
	r.mu.Lock()
	if !r.inNew(off, n) {
		if r.crashAfter >= 0 && r.tableDone >= r.crashAfter {
			r.mu.Unlock()
			return errPowerCut
		}
		r.tableDone++
	}
	r.events = append(r.events, event{"zero", off, n})
	r.mu.Unlock()
	return r.Device.ZeroRange(off, n)
}

var _ blockdev.Device = (*recorder)(nil)

// recordingDisk is an image file as apply.Run sees it, writing through
// the recorder. The kernel's view is the image handle's own (it has none).
type recordingDisk struct {
	w      *recorder
	kernel blockdev.Kernel
}

func (d *recordingDisk) Writer() (blockdev.Device, error) { return d.w, nil }
func (d *recordingDisk) Kernel() blockdev.Kernel          { return d.kernel }
func (d *recordingDisk) SettleUdev(context.Context, []string, time.Duration) error {
	return d.w.Close()
}

var _ apply.Disk = (*recordingDisk)(nil)

func (r *recorder) Sync() error {
	r.record(event{kind: "sync"})
	return r.Device.Sync()
}

func (r *recorder) Discard(off, n int64) error {
	r.record(event{"discard", off, n})
	return r.Device.Discard(off, n)
}

func (r *recorder) inNew(off, n int64) bool {
	for _, g := range r.newRanges {
		if off >= g[0] && off+n <= g[1] {
			return true
		}
	}
	return false
}

// seedImage writes the seed article's 64 MiB image grown to 1 GiB, like
// an appliance image dd'ed onto a bigger disk, with something in the store
// partition to see that it is never touched.
func seedImage(t *testing.T) string {
	t.Helper()
	path := gpttest.SeedImage(t, imageSize, diskSize)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte("store"), 1000), gpttest.StoreOffset); err != nil {
		t.Fatal(err)
	}
	return path
}

// definitions writes home.conf and var.conf (ext4, weights 2000:1000).
func definitions(t *testing.T) []repartd.Definition {
	t.Helper()
	return loadDefinitions(t, map[string]string{
		"home.conf": "[Partition]\nType=home\nFormat=ext4\nLabel=home\nWeight=2000\n",
		"var.conf":  "[Partition]\nType=var\nFormat=ext4\nLabel=var\nWeight=1000\n",
	})
}

func loadDefinitions(t *testing.T, files map[string]string) []repartd.Definition {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	defs, err := repartd.Load(repartd.Options{Dirs: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	return defs
}

// planFor opens the image, reads its table and plans.
func planFor(t *testing.T, path string, defs []repartd.Definition) (*plan.Plan, *gpt.Table) {
	t.Helper()
	tb, size, sectorSize := readTable(t, path)
	p, err := plan.Make(defs, plan.Snapshot{Size: uint64(size), SectorSize: sectorSize, Label: plan.LabelGPT, Table: tb}, plan.Options{Seed: seed,
		Discard: plan.DiscardPolicy{On: true, Budget: plan.DefaultDiscardBudget}})
	if err != nil {
		t.Fatal(err)
	}
	return p, tb
}

// readTable reads the image's GPT, with the image's size and sector size.
func readTable(t *testing.T, path string) (*gpt.Table, int64, int) {
	t.Helper()
	dev, err := blockdev.Open(path, blockdev.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	tb, err := gpt.Read(dev, dev.Size(), dev.SectorSize())
	if err != nil {
		t.Fatal(err)
	}
	return tb, dev.Size(), dev.SectorSize()
}

// run applies p to the image through a recorder; mkfs calls are recorded.
func run(t *testing.T, path string, p *plan.Plan, crashAfter int) (*recorder, error) {
	t.Helper()
	dev, err := blockdev.Open(path, blockdev.OpenOptions{Write: true, Flock: blockdev.ExclusiveFlock})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	r := &recorder{Device: dev, crashAfter: crashAfter}
	ss := int64(p.SectorSize)
	for _, s := range p.Steps {
		if a, ok := s.(plan.AddEntry); ok {
			r.newRanges = append(r.newRanges, [2]int64{int64(a.Entry.FirstLBA) * ss, int64(a.Entry.LastLBA+1) * ss})
		}
	}
	fakeMkfs := func(_ context.Context, args []string) error {
		off := int64(-1)
		for _, a := range args {
			if _, v, ok := strings.Cut(a, "offset="); ok {
				fmt.Sscan(v, &off)
			}
		}
		if !strings.HasPrefix(args[0], "mkfs.ext4") || !r.inNew(off, 1) {
			return fmt.Errorf("unexpected mkfs call %q", args)
		}
		r.record(event{kind: "mkfs", off: off})
		return nil
	}
	err = apply.Run(context.Background(), &recordingDisk{w: r, kernel: dev}, p, apply.Options{Runner: fakeMkfs})
	return r, err
}

// The order that makes a crash harmless, event by event, on a disk that
// grew: first the old table with its backup moved to the end (the old
// backup lies in a new partition's range); then the new ranges are wiped
// and formatted; then the new table. Each table write is backup array,
// backup header, primary array, primary header and protective MBR, each
// followed by a sync; no write lands inside an existing partition.
func TestRunFormatsFirstThenWritesBackupBeforePrimaryWithSyncAfterEach(t *testing.T) {
	path := seedImage(t)
	p, old := planFor(t, path, definitions(t))
	r, err := run(t, path, p, -1)
	if err != nil {
		t.Fatal(err)
	}
	const ss = 512
	last := int64(diskSize/ss - 1)
	tableWrite := []event{
		{"write", (last - 32) * ss, 16384}, {kind: "sync"},
		{"write", last * ss, ss}, {kind: "sync"},
		{"write", 2 * ss, 16384}, {kind: "sync"},
		{"write", ss, ss}, {kind: "sync"},
		{"write", 446, 66}, {kind: "sync"},
	}
	mkfs := 0
	for _, e := range r.events {
		if e.kind == "mkfs" {
			mkfs++
		}
		for _, o := range old.Entries {
			start, end := int64(o.FirstLBA)*ss, int64(o.LastLBA+1)*ss
			if e.kind != "sync" && e.kind != "mkfs" && e.off < end && start < e.off+e.size {
				t.Errorf("event %v inside existing partition %d", e, o.Index)
			}
		}
	}
	n := len(tableWrite)
	if mkfs != 2 || len(r.events) < 2*n {
		t.Fatalf("want 2 mkfs calls and two table writes, got %v", r.events)
	}
	if got := fmt.Sprint(r.events[:n]); got != fmt.Sprint(tableWrite) {
		t.Errorf("relocation (first table write):\n got %s\nwant %s", got, fmt.Sprint(tableWrite))
	}
	middle := r.events[n : len(r.events)-n]
	for _, e := range middle {
		if e.kind == "write" && !r.inNew(e.off, e.size) {
			t.Errorf("%v between the two table writes is outside the new partitions", e)
		}
	}
	if got := fmt.Sprint(r.events[len(r.events)-n:]); got != fmt.Sprint(tableWrite) {
		t.Errorf("new table (last write):\n got %s\nwant %s", got, fmt.Sprint(tableWrite))
	}
	if len(middle) == 0 || middle[len(middle)-1].kind != "sync" {
		t.Errorf("no sync between formatting and the table write: %v", r.events)
	}
}

// A run on a disk that already matches must write nothing: the plan is
// empty, and running it makes no write, sync, discard or mkfs call.
func TestSecondRunWritesNothing(t *testing.T) {
	path := seedImage(t)
	defs := definitions(t)
	p, _ := planFor(t, path, defs)
	if _, err := run(t, path, p, -1); err != nil {
		t.Fatal(err)
	}
	before := contentHash(t, path)
	p2, _ := planFor(t, path, defs)
	if p2.Changed() || len(p2.Steps) != 0 {
		t.Fatalf("second plan is not empty: %v", p2.Steps)
	}
	r, err := run(t, path, p2, -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.events) != 0 {
		t.Errorf("second run did %d things to the disk: %v", len(r.events), r.events)
	}
	if contentHash(t, path) != before {
		t.Errorf("second run changed the image")
	}
}

// A power cut after any number of table writes leaves a disk on which the
// next run converges to the same table as an uninterrupted run, and runs
// mkfs again only if the new partitions are not in the table it finds.
func TestPowerCutAtEveryTableWriteConverges(t *testing.T) {
	defs := definitions(t)
	ref := seedImage(t)
	p, _ := planFor(t, ref, defs)
	if _, err := run(t, ref, p, -1); err != nil {
		t.Fatal(err)
	}
	want := gptBytes(t, ref)

	for cut := 0; cut <= 5; cut++ {
		t.Run(fmt.Sprintf("after-%d-table-writes", cut), func(t *testing.T) {
			path := seedImage(t)
			p, _ := planFor(t, path, defs)
			_, err := run(t, path, p, cut)
			if cut < 5 && !errors.Is(err, errPowerCut) {
				t.Fatalf("run with a power cut after %d table writes: %v", cut, err)
			}

			p2, found := planFor(t, path, defs)
			r, err := run(t, path, p2, -1)
			if err != nil {
				t.Fatalf("next run after the power cut: %v", err)
			}
			hasNew := len(found.Entries) == 4
			mkfs := 0
			for _, e := range r.events {
				if e.kind == "mkfs" {
					mkfs++
				}
			}
			switch {
			case hasNew && mkfs > 0:
				t.Errorf("the table found has the new partitions, but mkfs ran again")
			case !hasNew && mkfs != 2:
				t.Errorf("the table found lacks the new partitions, but mkfs ran %d times", mkfs)
			}
			if got := gptBytes(t, path); !bytes.Equal(got, want) {
				t.Errorf("table after the next run differs from an uninterrupted run's")
			}
			if p3, _ := planFor(t, path, defs); p3.Changed() {
				t.Errorf("a third run would still change something: %v", p3.Steps)
			}
		})
	}
}

// gptBytes returns the protective MBR, both headers and both entry arrays.
func gptBytes(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 34*512+33*512)
	if _, err := f.ReadAt(b[:34*512], 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(b[34*512:], diskSize-33*512); err != nil {
		t.Fatal(err)
	}
	return b
}

// contentHash hashes the image's data extents with their offsets; holes
// read as zeros, so equal hashes mean equal bytes.
func contentHash(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	zero := make([]byte, 4096)
	buf := make([]byte, 4096)
	for off := int64(0); off < diskSize; {
		start, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		end, err := unix.Seek(int(f.Fd()), start, unix.SEEK_HOLE)
		if err != nil {
			t.Fatal(err)
		}
		for pos := start / 4096 * 4096; pos < end; pos += 4096 {
			n, _ := f.ReadAt(buf, pos)
			if !bytes.Equal(buf[:n], zero[:n]) {
				fmt.Fprintf(h, "%d:", pos)
				h.Write(buf[:n])
			}
		}
		off = end
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}
