package blockdev

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/pkg/blockdev/blockdevtest"
	"github.com/sprout-initrd/sprout/tests/harness"
	"golang.org/x/sys/unix"
)

func TestPartitionNode(t *testing.T) {
	for _, tc := range []struct {
		disk string
		n    int
		want string
	}{
		{"/dev/sda", 3, "/dev/sda3"},
		{"/dev/vda", 12, "/dev/vda12"},
		{"/dev/xvdb", 1, "/dev/xvdb1"},
		{"/dev/nvme0n1", 3, "/dev/nvme0n1p3"},
		{"/dev/loop0", 3, "/dev/loop0p3"},
		{"/dev/loop12", 1, "/dev/loop12p1"},
		{"/dev/mmcblk0", 3, "/dev/mmcblk0p3"},
		{"/dev/md127", 2, "/dev/md127p2"},
	} {
		if got := PartitionNode(tc.disk, tc.n); got != tc.want {
			t.Errorf("PartitionNode(%q, %d) = %q, want %q", tc.disk, tc.n, got, tc.want)
		}
	}
}

// loopDisk returns a locked, writable Device over a fresh loop disk.
func loopDisk(t *testing.T, size int64, sectorSize int) (*Handle, *blockdevtest.LoopDisk) {
	t.Helper()
	l := blockdevtest.NewLoopDisk(t, blockdevtest.LoopOptions{Size: size, SectorSize: sectorSize})
	return openT(t, l.Path, OpenOptions{Write: true, Flock: ExclusiveFlock}), l
}

func mustAdd(t *testing.T, dev *Handle, n int, start, size int64) string {
	t.Helper()
	if err := dev.AddPartition(n, start, size); err != nil {
		t.Fatal(err)
	}
	return PartitionNode(dev.Path(), n)
}

func wantKernel(t *testing.T, dev *Handle, want []KernelPartition) {
	t.Helper()
	got, err := dev.Partitions()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("kernel partitions\n got %+v\nwant %+v", got, want)
	}
}

func mkfsMount(t *testing.T, node string) string {
	t.Helper()
	harness.RequireTools(t, "mkfs.ext4")
	blockdevtest.Run(t, "mkfs.ext4", "-q", "-F", node)
	return blockdevtest.Mount(t, node, "ext4")
}

func TestAddPartition(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		t.Run(strconv.Itoa(ss), func(t *testing.T) {
			dev, _ := loopDisk(t, 64*mib, ss)
			wantKernel(t, dev, nil)
			node := mustAdd(t, dev, 2, 5*mib, 7*mib)
			wantKernel(t, dev, []KernelPartition{{Number: 2, Start: 5 * mib, Size: 7 * mib, Node: node}})
			if _, err := os.Stat(node); err != nil {
				t.Errorf("partition node: %v", err)
			}
			if got := partitionBytes(t, node); got != 7*mib {
				t.Errorf("BLKGETSIZE64 of %s = %d, want %d", node, got, 7*mib)
			}
			// The kernel insists on whole logical sectors; we say so first.
			if err := dev.AddPartition(3, 20*mib+512, mib); ss > 512 && err == nil {
				t.Error("AddPartition accepted a start that is not a multiple of the sector size")
			}
			if err := dev.AddPartition(0, 20*mib, mib); err == nil {
				t.Error("AddPartition accepted partition number 0")
			}
			// Overlaps are the kernel's to refuse; the errno must survive.
			if err := dev.AddPartition(4, 6*mib, mib); !errors.Is(err, unix.EBUSY) {
				t.Errorf("overlapping AddPartition = %v, want EBUSY", err)
			}
		})
	}
}

// partitionBytes is the size the kernel gives a block device node.
func partitionBytes(t *testing.T, node string) int64 {
	t.Helper()
	fd, err := unix.Open(node, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var size uint64
	if err := ioctlPtr(fd, unix.BLKGETSIZE64, &size); err != nil {
		t.Fatal(err)
	}
	return int64(size)
}

func TestResizeMountedPartition(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		t.Run(strconv.Itoa(ss), func(t *testing.T) {
			dev, _ := loopDisk(t, 128*mib, ss)
			node := mustAdd(t, dev, 1, mib, 32*mib)
			mkfsMount(t, node)
			if inUse, err := dev.PartitionInUse(1); err != nil || !inUse {
				t.Fatalf("PartitionInUse(mounted) = %v, %v; want true", inUse, err)
			}
			if err := dev.ResizePartition(1, mib, 100*mib); err != nil {
				t.Fatalf("resize of a mounted partition: %v", err)
			}
			wantKernel(t, dev, []KernelPartition{{Number: 1, Start: mib, Size: 100 * mib, Node: node}})
			if got := partitionBytes(t, node); got != 100*mib {
				t.Errorf("BLKGETSIZE64 of %s = %d after resize, want %d", node, got, 100*mib)
			}
			// The kernel keeps the start; BLKPG resize cannot move.
			if err := dev.ResizePartition(1, 2*mib, 10*mib); err == nil {
				t.Error("ResizePartition with a different start succeeded")
			}
			// A mounted partition cannot be deleted.
			if err := dev.DeletePartition(1); !errors.Is(err, unix.EBUSY) {
				t.Errorf("DeletePartition(mounted) = %v, want EBUSY", err)
			}
		})
	}
}

func TestPartitionInUse(t *testing.T) {
	dev, _ := loopDisk(t, 64*mib, 512)
	node := mustAdd(t, dev, 1, mib, 8*mib)
	mustAdd(t, dev, 2, 9*mib, 8*mib)

	check := func(n int, want bool, why string) {
		t.Helper()
		got, err := dev.PartitionInUse(n)
		if err != nil || got != want {
			t.Errorf("PartitionInUse(%d) %s = %v, %v; want %v", n, why, got, err, want)
		}
	}
	check(1, false, "idle")
	check(7, false, "unknown to the kernel")

	// Someone holds it exclusively (as a mount in another namespace would).
	fd, err := unix.Open(node, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	check(1, true, "opened O_EXCL elsewhere")
	unix.Close(fd)
	check(1, false, "after the O_EXCL holder closed")

	mkfsMount(t, PartitionNode(dev.Path(), 2))
	check(2, true, "mounted")
	check(1, false, "next to a mounted partition")
}

// TestSyncKernel grows a mounted partition, leaves two alone (one of them
// held open, which makes any delete fail with EBUSY) and adds one, and
// checks from the kernel's uevents that nothing was removed or re-added.
func TestSyncKernel(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		t.Run(strconv.Itoa(ss), func(t *testing.T) {
			dev, _ := loopDisk(t, 256*mib, ss)
			p1 := mustAdd(t, dev, 1, mib, 8*mib)
			p2 := mustAdd(t, dev, 2, 17*mib, 16*mib)
			p3 := mustAdd(t, dev, 3, 200*mib, 16*mib)
			mkfsMount(t, p1)
			held, err := os.Open(p2)
			if err != nil {
				t.Fatal(err)
			}
			defer held.Close()

			mon := blockdevtest.NewUeventMonitor(t)
			want := []WantPartition{
				{Number: 1, Start: mib, Size: 16 * mib}, // grown from 8 MiB while mounted
				{Number: 2, Start: 17 * mib, Size: 16 * mib},
				{Number: 3, Start: 200 * mib, Size: 16 * mib},
				{Number: 4, Start: 33 * mib, Size: 100 * mib},
			}
			changed, err := SyncKernel(dev, want)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(changed, []int{1, 4}) {
				t.Errorf("changed = %v, want [1 4]", changed)
			}
			p4 := PartitionNode(dev.Path(), 4)
			wantKernel(t, dev, []KernelPartition{
				{1, mib, 16 * mib, p1}, {2, 17 * mib, 16 * mib, p2}, {3, 200 * mib, 16 * mib, p3}, {4, 33 * mib, 100 * mib, p4},
			})
			disk := filepath.Base(dev.Path())
			var added []string
			for _, ev := range mon.Events() {
				if !strings.Contains(ev.DevPath, "/"+disk) {
					continue
				}
				if ev.Action == "remove" {
					t.Errorf("uevent %s@%s: an unchanged partition was removed", ev.Action, ev.DevPath)
				}
				if ev.Action == "add" {
					added = append(added, filepath.Base(ev.DevPath))
				}
			}
			if !reflect.DeepEqual(added, []string{filepath.Base(p4)}) {
				t.Errorf("add uevents for %v, want only %s", added, filepath.Base(p4))
			}
			// The held descriptor still reads the same partition.
			if _, err := held.ReadAt(make([]byte, 512), 0); err != nil {
				t.Errorf("read from held-open %s after sync: %v", p2, err)
			}

			// Nothing left to do: a second run changes nothing.
			changed, err = SyncKernel(dev, want)
			if err != nil || len(changed) != 0 {
				t.Errorf("second SyncKernel = %v, %v; want nothing changed", changed, err)
			}
		})
	}
}

// TestSyncKernelMoveAndRemove: a partition whose start differs is deleted
// and re-added, one missing from the table is deleted, and a refusal
// (mounted partition) surfaces as EBUSY naming the partition.
func TestSyncKernelMoveAndRemove(t *testing.T) {
	dev, _ := loopDisk(t, 128*mib, 512)
	p1 := mustAdd(t, dev, 1, mib, 16*mib)
	mustAdd(t, dev, 2, 20*mib, 8*mib)
	mustAdd(t, dev, 3, 40*mib, 8*mib)
	mkfsMount(t, p1)

	want := []WantPartition{{1, mib, 16 * mib}, {2, 30 * mib, 8 * mib}}
	changed, err := SyncKernel(dev, want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(changed, []int{2, 3}) {
		t.Errorf("changed = %v, want [2 3]", changed)
	}
	wantKernel(t, dev, []KernelPartition{{1, mib, 16 * mib, p1}, {2, 30 * mib, 8 * mib, PartitionNode(dev.Path(), 2)}})

	_, err = SyncKernel(dev, []WantPartition{{1, 2 * mib, 16 * mib}, {2, 30 * mib, 8 * mib}})
	if !errors.Is(err, unix.EBUSY) {
		t.Fatalf("moving a mounted partition: %v, want EBUSY", err)
	}
	if !strings.Contains(err.Error(), "partition 1 of "+dev.Path()) {
		t.Errorf("error %q does not name partition 1 of %s", err, dev.Path())
	}

	if _, err := SyncKernel(dev, []WantPartition{{2, 30 * mib, 8 * mib}, {2, 30 * mib, 8 * mib}}); err == nil {
		t.Error("SyncKernel accepted a partition listed twice")
	}
	// A bad entry is refused before the kernel is told anything.
	changed, err = SyncKernel(dev, []WantPartition{{1, mib, 16 * mib}, {3, 50 * mib, 8 * mib}, {4, 60*mib + 100, mib}})
	if err == nil || len(changed) != 0 || !strings.Contains(err.Error(), "partition 4") {
		t.Errorf("unaligned partition 4: changed %v, err %v; want nothing changed and an error naming it", changed, err)
	}
	wantKernel(t, dev, []KernelPartition{{1, mib, 16 * mib, p1}, {2, 30 * mib, 8 * mib, PartitionNode(dev.Path(), 2)}})
}

func TestVerifyKernelReportsDifferences(t *testing.T) {
	dev, _ := loopDisk(t, 64*mib, 512)
	mustAdd(t, dev, 1, mib, 8*mib)
	mustAdd(t, dev, 3, 20*mib, 8*mib)
	d := dev
	if err := verifyKernel(d, []WantPartition{{1, mib, 8 * mib}, {3, 20 * mib, 8 * mib}}); err != nil {
		t.Fatalf("matching view reported as different: %v", err)
	}
	err := verifyKernel(d, []WantPartition{{1, mib, 9 * mib}, {2, 10 * mib, mib}})
	if err == nil {
		t.Fatal("differences not reported")
	}
	for _, want := range []string{
		"partition 1: expected start 1048576 size 9437184, kernel has start 1048576 size 8388608",
		"partition 2: expected start 10485760 size 1048576, kernel has none",
		"partition 3: not in the table, kernel has start 20971520 size 8388608",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
