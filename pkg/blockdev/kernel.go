package blockdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// AddPartition tells the kernel about partition number at [start, start+length)
// (bytes) with BLKPG_ADD_PARTITION. A no-op for regular files.
func AddPartition(dev Device, number int, start, length int64) error {
	return blkpg(dev, unix.BLKPG_ADD_PARTITION, "add", number, start, length)
}

// ResizePartition changes the kernel's size of partition number with
// BLKPG_RESIZE_PARTITION; start must be the partition's current start. It
// works while the partition is mounted. A no-op for regular files.
func ResizePartition(dev Device, number int, start, length int64) error {
	return blkpg(dev, unix.BLKPG_RESIZE_PARTITION, "resize", number, start, length)
}

// DeletePartition removes partition number from the kernel's view with
// BLKPG_DEL_PARTITION (the disk is not touched). The kernel refuses with
// EBUSY while the partition is open. A no-op for regular files.
func DeletePartition(dev Device, number int) error {
	return blkpg(dev, unix.BLKPG_DEL_PARTITION, "delete", number, 0, 0)
}

func blkpg(dev Device, op int32, verb string, number int, start, length int64) error {
	d, err := blockDevice(dev)
	if d == nil || err != nil {
		return err
	}
	what := fmt.Sprintf("%s partition %d of %s", verb, number, d.path)
	if op != unix.BLKPG_DEL_PARTITION {
		what = fmt.Sprintf("%s (start %d, size %d bytes)", what, start, length)
		ss := int64(d.sectorSize)
		if start < 0 || length <= 0 || start%ss != 0 || length%ss != 0 {
			return fmt.Errorf("%s: start and size must be positive multiples of the %d-byte sector size", what, ss)
		}
	}
	if number < 1 {
		return fmt.Errorf("%s: partition numbers start at 1", what)
	}
	part := unix.BlkpgPartition{Start: start, Length: length, Pno: int32(number)}
	arg := unix.BlkpgIoctlArg{
		Op:      op,
		Datalen: int32(unsafe.Sizeof(part)),
		Data:    (*byte)(unsafe.Pointer(&part)),
	}
	err = ioctlPtr(d.fd, unix.BLKPG, &arg)
	runtime.KeepAlive(&part)
	if err != nil {
		return fmt.Errorf("%s: BLKPG: %w", what, err)
	}
	return nil
}

// WantPartition is a partition the kernel should know about. Start and Size
// are in bytes.
type WantPartition struct {
	Number      int
	Start, Size int64
}

// SyncKernel makes the kernel's partitions of dev equal want, which must be
// the complete partition table, without disturbing partitions that already
// match: those are never removed and re-added (that would unmount nothing
// but would send remove/add uevents and drop udev links under systemd's
// feet). Like systemd-repart (v259+) and libfdisk it issues, in order:
// BLKPG deletes for kernel partitions that are not in want or whose start
// moved, resizes for same-start partitions (shrinks before grows, so that a
// grow never overlaps a not-yet-shrunk neighbour), then adds. BLKRRPART is
// never used: it fails as soon as any partition is mounted.
//
// changed lists the partition numbers the kernel was told about, sorted.
// A refusal names the partition and wraps the kernel's errno, so
// errors.Is(err, unix.EBUSY) works. Afterwards sysfs is read again and any
// difference from want is an error naming the partition. A no-op for
// regular files.
func SyncKernel(dev Device, want []WantPartition) (changed []int, err error) {
	d, err := blockDevice(dev)
	if d == nil || err != nil {
		return nil, err
	}
	// Refuse a bad table before telling the kernel anything.
	wanted := make(map[int]WantPartition, len(want))
	ss := int64(d.sectorSize)
	for _, w := range want {
		if _, dup := wanted[w.Number]; dup {
			return nil, fmt.Errorf("sync kernel partitions of %s: partition %d listed twice", d.path, w.Number)
		}
		if w.Number < 1 || w.Start < 0 || w.Size <= 0 || w.Start%ss != 0 || w.Size%ss != 0 {
			return nil, fmt.Errorf("sync kernel partitions of %s: partition %d (start %d, size %d): want a number from 1 and positive multiples of the %d-byte sector size",
				d.path, w.Number, w.Start, w.Size, ss)
		}
		wanted[w.Number] = w
	}
	current, err := kernelPartitions(d)
	if err != nil {
		return nil, err
	}
	have := make(map[int]KernelPartition, len(current))
	for _, p := range current {
		have[p.Number] = p
	}

	var deletes, shrinks, grows, adds []int
	for _, p := range current {
		w, ok := wanted[p.Number]
		if !ok || w.Start != p.Start {
			deletes = append(deletes, p.Number)
		}
	}
	for _, w := range want {
		p, ok := have[w.Number]
		switch {
		case !ok || p.Start != w.Start:
			adds = append(adds, w.Number)
		case w.Size < p.Size:
			shrinks = append(shrinks, w.Number)
		case w.Size > p.Size:
			grows = append(grows, w.Number)
		}
	}
	sort.Ints(adds)
	sort.Ints(shrinks)
	sort.Ints(grows)

	touched := map[int]bool{}
	note := func(n int) { touched[n] = true }
	result := func() []int {
		var ns []int
		for n := range touched {
			ns = append(ns, n)
		}
		sort.Ints(ns)
		return ns
	}
	for _, n := range deletes {
		if err := DeletePartition(d, n); err != nil {
			return result(), err
		}
		note(n)
	}
	for _, n := range append(shrinks, grows...) {
		w := wanted[n]
		if err := ResizePartition(d, n, w.Start, w.Size); err != nil {
			return result(), err
		}
		note(n)
	}
	for _, n := range adds {
		w := wanted[n]
		if err := AddPartition(d, n, w.Start, w.Size); err != nil {
			return result(), err
		}
		note(n)
	}
	if err := verifyKernel(d, want); err != nil {
		return result(), err
	}
	return result(), nil
}

// verifyKernel re-reads sysfs and reports the first difference from want.
func verifyKernel(d *device, want []WantPartition) error {
	current, err := kernelPartitions(d)
	if err != nil {
		return err
	}
	have := make(map[int]KernelPartition, len(current))
	for _, p := range current {
		have[p.Number] = p
	}
	var problems []string
	for _, w := range want {
		p, ok := have[w.Number]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("partition %d: expected start %d size %d, kernel has none", w.Number, w.Start, w.Size))
		case p.Start != w.Start || p.Size != w.Size:
			problems = append(problems, fmt.Sprintf("partition %d: expected start %d size %d, kernel has start %d size %d", w.Number, w.Start, w.Size, p.Start, p.Size))
		}
		delete(have, w.Number)
	}
	for _, p := range current {
		if _, extra := have[p.Number]; extra {
			problems = append(problems, fmt.Sprintf("partition %d: not in the table, kernel has start %d size %d", p.Number, p.Start, p.Size))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("kernel's view of %s differs from the partition table after sync: %s", d.path, strings.Join(problems, "; "))
	}
	return nil
}

// PartitionInUse reports whether partition n of dev is mounted (in this
// mount namespace), has holders (device mapper, md, …), or is held open
// exclusively (mounted elsewhere, swap, another partitioner). A partition
// the kernel does not know is not in use. Regular files: always false.
func PartitionInUse(dev Device, n int) (bool, error) {
	d, err := blockDevice(dev)
	if d == nil || err != nil {
		return false, err
	}
	p, ok, err := kernelPartition(d, n)
	if err != nil || !ok {
		return false, err
	}
	devNum, err := DevNumOf(p.Node)
	if err != nil {
		return false, fmt.Errorf("partition %d of %s: %w", n, d.path, err)
	}
	mounted, err := d.root.Mounted(devNum)
	if err != nil {
		return false, fmt.Errorf("read mount table: %w", err)
	}
	if mounted {
		return true, nil
	}
	dir, err := d.root.dirOf(devNum)
	if err != nil {
		return false, err
	}
	holders, err := os.ReadDir(filepath.Join(dir, "holders"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("partition %d of %s: holders: %w", n, d.path, err)
	}
	if len(holders) > 0 {
		return true, nil
	}
	// The kernel answers EBUSY to O_EXCL on a block device that someone
	// else holds exclusively (a mount in any namespace, swap, dm, md).
	fd, err := unix.Open(p.Node, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EBUSY) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("partition %d of %s: open %s exclusively: %w", n, d.path, p.Node, err)
	}
	unix.Close(fd)
	return false, nil
}
