// Package blockdev is sprout's Linux block layer, the only package that
// knows about file descriptors of disks, ioctls, flock, sysfs, mountinfo,
// device-node names, udev and loop devices. Everything else asks it.
//
// Its parts, in go-blockdevice's manner:
//   - Device is the I/O handle: bytes in and out, sync, discard, zeroing.
//   - Kernel is the kernel's view of one disk's partitions (list, add,
//     resize, delete with BLKPG; is one in use), keyed by the disk.
//   - Session owns one run's handles and the disk's flock and releases
//     them, so the lock's life stays inside this package.
//   - Paths says where sysfs, /dev, mountinfo and udev's directory are, so
//     the code that reads them is tested on fake trees.
//
// A regular image file and a block device open the same way; for a file
// every kernel-side operation is a no-op, so the same code runs against
// images in tests and against real disks at boot.
package blockdev

import (
	"errors"
	"io"
)

// Device is an open disk or image file as the snapshot and the writer
// need it.
type Device interface {
	io.ReaderAt
	io.WriterAt
	// Path is the resolved path the device was opened by (symlinks followed).
	Path() string
	// Size is the size in bytes, taken when the device was opened.
	Size() int64
	// SectorSize is the logical sector size (512 for regular files).
	SectorSize() int
	// PhysicalSectorSize is the physical sector size (512 for regular files).
	PhysicalSectorSize() int
	IsBlockDevice() bool
	// Sync flushes written data to stable storage (fsync).
	Sync() error
	// Discard tells the storage that [off, off+length) holds no data. It
	// returns an error wrapping ErrDiscardUnsupported when the device cannot
	// discard; callers may ignore that one.
	Discard(off, length int64) error
	// ZeroRange makes [off, off+length) read as zeros without writing
	// them where it can (a hole in a file, BLKZEROOUT on a disk).
	ZeroRange(off, length int64) error
	// Close releases the lock (if any) and the file descriptor.
	Close() error
}

// Kernel is the kernel's view of one disk's partitions. Start and size
// are in bytes. For an image file it lists nothing and changes nothing.
type Kernel interface {
	// Partitions lists the partitions the kernel knows, by number.
	Partitions() ([]KernelPartition, error)
	// AddPartition adds partition n at [start, start+size).
	AddPartition(n int, start, size int64) error
	// ResizePartition changes partition n's size; start must be its
	// current start. It works while the partition is mounted.
	ResizePartition(n int, start, size int64) error
	// DeletePartition forgets partition n (the disk is not touched); the
	// kernel refuses with EBUSY while it is open.
	DeletePartition(n int) error
	// PartitionInUse reports whether partition n is mounted, has holders
	// (device mapper, md, …) or is held open exclusively. A partition the
	// kernel does not know is not in use.
	PartitionInUse(n int) (bool, error)
	// SectorSize is the disk's logical sector size: BLKPG takes only
	// whole sectors.
	SectorSize() int
	// Identity is the disk's; its DevNum is "" for an image file, which
	// has no kernel view.
	Identity() Identity
}

// Identity names a disk to the kernel independently of any open handle:
// what waiting for udev needs after the handles are closed.
type Identity struct {
	Path   string // the resolved node (or image file)
	DevNum string // "major:minor"; "" for an image file
}

// KernelPartition is one partition as the kernel currently sees it (sysfs).
type KernelPartition struct {
	Number int
	// Start and Size are in bytes.
	Start, Size int64
	// Node is the device node, e.g. /dev/loop0p3.
	Node string
}

var (
	// ErrReadOnly is returned when Write is requested on a read-only block device.
	ErrReadOnly = errors.New("device is read-only")
	// ErrDiscardUnsupported is wrapped by Discard when the device or file
	// system cannot discard (EOPNOTSUPP, ENOTTY, EINVAL) or refuses for a
	// reason that is not the caller's fault (EBUSY, a known kernel quirk).
	ErrDiscardUnsupported = errors.New("discard not supported")
	// ErrNotPartition is returned by DiskForPartition for a whole disk.
	ErrNotPartition = errors.New("not a partition")
)
