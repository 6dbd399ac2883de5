package apply_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/apply"
	"github.com/sprout-initrd/sprout/pkg/blockdev"
	"github.com/sprout-initrd/sprout/pkg/gpt"
	"github.com/sprout-initrd/sprout/pkg/plan"
)

// fakeKernel is a disk's kernel view in memory; it records what it is told.
type fakeKernel struct {
	parts   []blockdev.KernelPartition
	calls   []string
	failAdd error
}

var _ blockdev.Kernel = (*fakeKernel)(nil)

func (k *fakeKernel) Partitions() ([]blockdev.KernelPartition, error) { return k.parts, nil }
func (k *fakeKernel) AddPartition(n int, start, size int64) error {
	k.calls = append(k.calls, fmt.Sprintf("add %d %d+%d", n, start, size))
	return k.failAdd
}
func (k *fakeKernel) ResizePartition(n int, start, size int64) error {
	k.calls = append(k.calls, fmt.Sprintf("resize %d %d+%d", n, start, size))
	return nil
}
func (k *fakeKernel) DeletePartition(n int) error {
	k.calls = append(k.calls, fmt.Sprintf("delete %d", n))
	return nil
}
func (k *fakeKernel) PartitionInUse(int) (bool, error) { return false, nil }
func (k *fakeKernel) SectorSize() int                  { return 512 }
func (k *fakeKernel) Identity() blockdev.Identity {
	return blockdev.Identity{Path: "/dev/vda", DevNum: "254:0"}
}

// catchUpDisk is a Disk that is only caught up: it has no writer, and
// records the links SettleUdev was asked to wait for.
type catchUpDisk struct {
	kernel  *fakeKernel
	settled [][]string
}

func (d *catchUpDisk) Writer() (blockdev.Device, error) { return nil, errors.New("no writer") }
func (d *catchUpDisk) Kernel() blockdev.Kernel          { return d.kernel }
func (d *catchUpDisk) SettleUdev(_ context.Context, links []string, _ time.Duration) error {
	d.settled = append(d.settled, links)
	return nil
}

// catchUpPlan is a no-op plan over a table of four 1 MiB partitions.
func catchUpPlan() *plan.Plan {
	p := &plan.Plan{SectorSize: 512, New: &gpt.Table{SectorSize: 512}}
	for n := 1; n <= 4; n++ {
		id := uuid.MustParse(fmt.Sprintf("00000000-0000-4000-8000-00000000000%d", n))
		first := uint64(n) * 2048
		p.New.Entries = append(p.New.Entries, gpt.Entry{Index: n, UUID: id, FirstLBA: first, LastLBA: first + 2047, Name: fmt.Sprintf("p%d", n)})
		p.Partitions = append(p.Partitions, plan.Partition{Index: n, Label: fmt.Sprintf("p%d", n), UUID: id})
	}
	return p
}

// TestCatchUpKernelAddsAndGrowsButNeverRemoves: the kernel knows
// partition 1 as the table has it, partition 2 smaller, partition 3 not
// at all and partition 4 at another start. The catch-up grows 2, adds 3,
// leaves 1 and 4 alone, and waits for the links of 3 only.
func TestCatchUpKernelAddsAndGrowsButNeverRemoves(t *testing.T) {
	const mib = 1 << 20
	k := &fakeKernel{parts: []blockdev.KernelPartition{
		{Number: 1, Start: 1 * mib, Size: mib},
		{Number: 2, Start: 2 * mib, Size: mib / 2},
		{Number: 4, Start: 5 * mib, Size: mib},
	}}
	d := &catchUpDisk{kernel: k}
	var logged []string
	log := func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }
	if err := apply.CatchUpKernel(context.Background(), d, catchUpPlan(), log); err != nil {
		t.Fatal(err)
	}
	if want := []string{"resize 2 2097152+1048576", "add 3 3145728+1048576"}; !reflect.DeepEqual(k.calls, want) {
		t.Errorf("kernel told %q, want %q", k.calls, want)
	}
	want := [][]string{{"/dev/disk/by-partlabel/p3", "/dev/disk/by-partuuid/00000000-0000-4000-8000-000000000003"}}
	if !reflect.DeepEqual(d.settled, want) {
		t.Errorf("waited for %q, want %q", d.settled, want)
	}
	if len(logged) != 3 || !strings.Contains(logged[0], "partition 2 smaller") || !strings.Contains(logged[1], "partition 3 yet") {
		t.Errorf("log = %q", logged)
	}
}

// TestCatchUpKernelFailsWithoutWaiting: a refused add is an error, and
// nothing is waited for.
func TestCatchUpKernelFailsWithoutWaiting(t *testing.T) {
	k := &fakeKernel{failAdd: errors.New("EBUSY")}
	d := &catchUpDisk{kernel: k}
	err := apply.CatchUpKernel(context.Background(), d, catchUpPlan(), func(string, ...any) {})
	if err == nil || !strings.Contains(err.Error(), "EBUSY") {
		t.Errorf("err = %v, want the kernel's refusal", err)
	}
	if len(d.settled) != 0 {
		t.Errorf("waited for udev after a failure: %q", d.settled)
	}
}
