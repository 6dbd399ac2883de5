// Package blockdev is sprout's Linux block layer, the only package that
// knows about file descriptors of disks, ioctls, flock, sysfs, mountinfo,
// device-node names, udev and loop devices: opening and locking a disk or
// image file, sector sizes, discard, the kernel's partition view (sysfs
// and BLKPG) and waiting for udev.
//
// A regular image file and a block device implement the same Device
// interface; for files every kernel-side operation is a no-op, so the same
// code runs against images in tests and against real disks at boot.
package blockdev

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sprout-initrd/sprout/pkg/plainfile"
	"golang.org/x/sys/unix"
)

// Device is what the planner's snapshot and the writer need from a disk.
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

var _ Device = (*device)(nil)

// OpenOptions says how to open a device.
type OpenOptions struct {
	// Write opens the device read-write. Leave it false for anything that
	// changes nothing: closing a block device opened for writing makes
	// udev's inotify watch re-probe the disk.
	Write bool
	// Lock takes a BSD lock (flock) until Close: exclusive when Write is set,
	// shared otherwise. This is udev's block-device locking protocol: udev
	// does not probe a disk while someone holds LOCK_EX on it.
	Lock bool
	// Exclusive takes the lock exclusively even on a read-only open. sprout
	// holds such a lock on a read-only descriptor for the whole run and
	// writes through a second, unlocked one: when that one is closed,
	// udev's watch finds the disk locked and does not re-read its table.
	Exclusive bool
	// LockTimeout bounds the wait for the lock (udev holds a shared lock
	// while it probes). Zero means 10 seconds.
	LockTimeout time.Duration
	// Root is where the kernel's state is read (sysfs, mountinfo, udev);
	// empty fields mean the system's.
	Root Root
}

const defaultLockTimeout = 10 * time.Second

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

// Open opens a whole block device or a regular image file.
//
// Symlinks (such as /dev/disk/by-id/…) are resolved first. A partition node
// is refused with an error naming the disk it belongs to, and so is anything
// that is neither a block device nor a regular file. The device is never
// opened O_EXCL, because a partition of the disk may be mounted.
func Open(path string, opts OpenOptions) (Device, error) {
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	resolved, err = filepath.Abs(resolved)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	st, err := os.Stat(resolved)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	isBlock := st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0
	if !isBlock && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("open %s: %s is neither a block device nor a regular file (mode %s)", path, resolved, st.Mode().Type())
	}
	opts.Root = opts.Root.orSystem()
	if isBlock {
		if err := refusePartition(opts.Root, resolved); err != nil {
			return nil, err
		}
		// Check before opening for writing: closing a write-opened disk
		// makes udev re-probe it, even if nothing was written.
		if opts.Write {
			if err := refuseReadOnly(resolved); err != nil {
				return nil, err
			}
		}
	}
	flags := os.O_RDONLY
	if opts.Write {
		flags = os.O_RDWR
	}
	fd, err := openFD(resolved, flags)
	if err != nil {
		if opts.Write && errors.Is(err, unix.EROFS) {
			return nil, fmt.Errorf("open %s for writing: %w (%w)", resolved, ErrReadOnly, err)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	d, err := newDevice(fd, resolved, opts)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return d, nil
}

// openFD opens path with a plain descriptor rather than an os.File: an
// os.File of a disk or image joins the runtime's poller (an epoll
// instance, an eventfd and a registration attempt per file), which every
// boot's no-op run would pay for. Errors read like os.OpenFile's.
func openFD(path string, flags int) (int, error) {
	for {
		fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// refuseReadOnly returns ErrReadOnly for a read-only block device (BLKROGET;
// the kernel itself lets O_RDWR opens of such devices succeed).
func refuseReadOnly(node string) error {
	f, err := os.OpenFile(node, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", node, err)
	}
	defer f.Close()
	ro, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKROGET)
	if err != nil {
		return fmt.Errorf("%s: BLKROGET: %w", node, err)
	}
	if ro != 0 {
		return fmt.Errorf("open %s for writing: %w", node, ErrReadOnly)
	}
	return nil
}

// refusePartition returns an error when node is a partition of a disk.
func refusePartition(root Root, node string) error {
	disk, n, err := root.DiskForPartition(node)
	if errors.Is(err, ErrNotPartition) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", node, err)
	}
	return fmt.Errorf("open %s: %s is partition %d of %s; pass the whole disk", node, node, n, disk)
}

func newDevice(fd int, path string, opts OpenOptions) (*device, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	d := &device{fd: fd, path: path, writable: opts.Write, root: opts.Root}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		d.size = st.Size
		d.sectorSize = 512
		d.physicalSectorSize = 512
	case unix.S_IFBLK:
		d.block = true
		d.rdev = st.Rdev
		if err := d.queryBlockDevice(opts.Write); err != nil {
			return nil, err
		}
	default:
		// The path was checked before opening; it changed under us.
		return nil, fmt.Errorf("open %s: no longer a block device or regular file", path)
	}
	if opts.Lock {
		if err := d.lock(opts); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// device implements Device for both block devices and regular files.
type device struct {
	fd                 int
	path               string
	root               Root
	writable           bool
	locked             bool
	closed             bool
	block              bool
	rdev               uint64 // device number, block devices only
	size               int64
	sectorSize         int
	physicalSectorSize int
}

func (d *device) queryBlockDevice(write bool) error {
	fd := d.fd
	if write {
		ro, err := unix.IoctlGetInt(fd, unix.BLKROGET)
		if err != nil {
			return fmt.Errorf("%s: BLKROGET: %w", d.path, err)
		}
		if ro != 0 {
			return fmt.Errorf("open %s for writing: %w", d.path, ErrReadOnly)
		}
	}
	size, err := deviceBytes(fd)
	if err != nil {
		return fmt.Errorf("%s: %w", d.path, err)
	}
	ss, err := logicalSectorSize(fd)
	if err != nil {
		return fmt.Errorf("%s: %w", d.path, err)
	}
	pss, err := unix.IoctlGetUint32(fd, unix.BLKPBSZGET)
	if err != nil {
		return fmt.Errorf("%s: BLKPBSZGET: %w", d.path, err)
	}
	d.size = size
	d.sectorSize = ss
	d.physicalSectorSize = int(pss)
	return nil
}

// lock takes the BSD lock, exclusive for a writer or when asked.
func (d *device) lock(opts OpenOptions) error {
	timeout := opts.LockTimeout
	if timeout == 0 {
		timeout = defaultLockTimeout
	}
	if err := flockWait(d.fd, d.path, opts.Write || opts.Exclusive, timeout, 50*time.Millisecond); err != nil {
		return err
	}
	d.locked = true
	return nil
}

// unlock releases the BSD lock early (closing releases it too).
func (d *device) unlock() {
	if d.locked {
		unix.Flock(d.fd, unix.LOCK_UN) // fails only if already closed: then it is released
		d.locked = false
	}
}

func (d *device) Path() string            { return d.path }
func (d *device) Size() int64             { return d.size }
func (d *device) SectorSize() int         { return d.sectorSize }
func (d *device) PhysicalSectorSize() int { return d.physicalSectorSize }
func (d *device) IsBlockDevice() bool     { return d.block }

// ReadAt reads like os.File.ReadAt: until p is full, io.EOF at the end.
func (d *device) ReadAt(p []byte, off int64) (int, error) {
	return plainfile.ReadAt(d.fd, d.path, p, off)
}

// WriteAt writes like os.File.WriteAt: all of p, or an error.
func (d *device) WriteAt(p []byte, off int64) (int, error) {
	if !d.writable {
		return 0, fmt.Errorf("write %s at %d: device was opened read-only", d.path, off)
	}
	if off < 0 {
		return 0, &os.PathError{Op: "writeat", Path: d.path, Err: errors.New("negative offset")}
	}
	done := 0
	for done < len(p) {
		n, err := unix.Pwrite(d.fd, p[done:], off+int64(done))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, &os.PathError{Op: "write", Path: d.path, Err: err}
		}
		if n == 0 {
			return done, &os.PathError{Op: "write", Path: d.path, Err: io.ErrUnexpectedEOF}
		}
		done += n
	}
	return done, nil
}

func (d *device) Sync() error {
	for {
		err := unix.Fsync(d.fd)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("sync %s: %w", d.path, &os.PathError{Op: "sync", Path: d.path, Err: err})
		}
		return nil
	}
}

// Close is safe to call more than once.
func (d *device) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	// Closing the descriptor releases the flock. No retry on EINTR: the
	// descriptor is gone either way on Linux.
	if err := unix.Close(d.fd); err != nil {
		return fmt.Errorf("close %s: %w", d.path, &os.PathError{Op: "close", Path: d.path, Err: err})
	}
	return nil
}

// ZeroRange makes [off, off+length) read as zeros without writing them:
// a file gets a hole (and stays sparse), a block device gets BLKZEROOUT,
// which the kernel offloads to the device when it can and otherwise
// carries out itself. Callers fall back to writing zeros on an error.
func (d *device) ZeroRange(off, length int64) error {
	if !d.writable {
		return fmt.Errorf("zero %s: device was opened read-only", d.path)
	}
	if off < 0 || length < 0 || off+length > d.size {
		return fmt.Errorf("zero %s: range [%d, %d) outside device of %d bytes", d.path, off, off+length, d.size)
	}
	if length == 0 {
		return nil
	}
	fd := d.fd
	if !d.block {
		if err := unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length); err != nil {
			return fmt.Errorf("zero %s [%d, %d): punch hole: %w", d.path, off, off+length, err)
		}
		return nil
	}
	rng := [2]uint64{uint64(off), uint64(length)}
	if err := ioctlPtr(fd, unix.BLKZEROOUT, &rng); err != nil {
		return fmt.Errorf("zero %s [%d, %d): BLKZEROOUT: %w", d.path, off, off+length, err)
	}
	return nil
}

// Discard implements Device. On a block device the range is rounded inwards
// to whole logical sectors (BLKDISCARD refuses partial sectors); on a file
// the range is punched out, keeping the file size.
func (d *device) Discard(off, length int64) error {
	if !d.writable {
		return fmt.Errorf("discard %s: device was opened read-only", d.path)
	}
	if off < 0 || length < 0 || off+length > d.size {
		return fmt.Errorf("discard %s: range [%d, %d) outside device of %d bytes", d.path, off, off+length, d.size)
	}
	fd := d.fd
	if !d.block {
		if length == 0 {
			return nil
		}
		err := unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
		if errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("discard %s [%d, %d): %w: %w", d.path, off, off+length, ErrDiscardUnsupported, err)
		}
		if err != nil {
			return fmt.Errorf("discard %s [%d, %d): punch hole: %w", d.path, off, off+length, err)
		}
		return nil
	}
	ss := int64(d.sectorSize)
	start := (off + ss - 1) / ss * ss
	end := (off + length) / ss * ss
	if end <= start {
		return nil
	}
	rng := [2]uint64{uint64(start), uint64(end - start)}
	err := ioctlPtr(fd, unix.BLKDISCARD, &rng)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOTTY), errors.Is(err, unix.EINVAL),
		// EBUSY: kernel bug 211167 makes some devices refuse discard while
		// partitions are in use; systemd-repart treats it as "unsupported" too.
		errors.Is(err, unix.EBUSY):
		return fmt.Errorf("discard %s [%d, %d): %w: %w", d.path, start, end, ErrDiscardUnsupported, err)
	default:
		return fmt.Errorf("discard %s [%d, %d): BLKDISCARD: %w", d.path, start, end, err)
	}
}
