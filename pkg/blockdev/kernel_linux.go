package blockdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Handle implements Kernel for its disk. BLKPG goes through the handle's
// descriptor (it takes CAP_SYS_ADMIN, not a writable open); sysfs is read
// by the disk's device number. For a regular file there is no kernel view:
// nothing is listed and every change is a no-op.

// Partitions implements Kernel.
func (d *Handle) Partitions() ([]KernelPartition, error) {
	if !d.block {
		return nil, nil
	}
	parts, err := d.root.Partitions(devNumString(d.rdev))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.path, err)
	}
	return parts, nil
}

// AddPartition implements Kernel with BLKPG_ADD_PARTITION.
func (d *Handle) AddPartition(n int, start, size int64) error {
	return d.blkpg(unix.BLKPG_ADD_PARTITION, "add", n, start, size)
}

// ResizePartition implements Kernel with BLKPG_RESIZE_PARTITION.
func (d *Handle) ResizePartition(n int, start, size int64) error {
	return d.blkpg(unix.BLKPG_RESIZE_PARTITION, "resize", n, start, size)
}

// DeletePartition implements Kernel with BLKPG_DEL_PARTITION.
func (d *Handle) DeletePartition(n int) error {
	return d.blkpg(unix.BLKPG_DEL_PARTITION, "delete", n, 0, 0)
}

func (d *Handle) blkpg(op int32, verb string, number int, start, length int64) error {
	if !d.block {
		return nil
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
	err := ioctlPtr(d.fd, unix.BLKPG, &arg)
	runtime.KeepAlive(&part)
	if err != nil {
		return fmt.Errorf("%s: BLKPG: %w", what, err)
	}
	return nil
}

// PartitionInUse implements Kernel: mounted (in this mount namespace),
// holders (device mapper, md, …), or held open exclusively (mounted
// elsewhere, swap, another partitioner).
func (d *Handle) PartitionInUse(n int) (bool, error) {
	if !d.block {
		return false, nil
	}
	parts, err := d.Partitions()
	if err != nil {
		return false, err
	}
	var p KernelPartition
	for _, k := range parts {
		if k.Number == n {
			p = k
		}
	}
	if p.Number == 0 {
		return false, nil
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
