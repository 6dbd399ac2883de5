package blockdev

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sprout-initrd/sprout/pkg/pollfree"
	"golang.org/x/sys/unix"
)

var (
	_ Device = (*Handle)(nil)
	_ Kernel = (*Handle)(nil)
)

// FlockMode is the BSD lock (flock(2)) a handle holds until Close: udev's
// block-device locking protocol. udev does not probe a disk while someone
// holds LOCK_EX on it, and holds LOCK_SH itself while it probes.
type FlockMode int

const (
	NoFlock        FlockMode = iota
	SharedFlock              // LOCK_SH: reading, and udev may probe too
	ExclusiveFlock           // LOCK_EX: udev keeps away from the disk
)

// OpenOptions says how to open a device.
type OpenOptions struct {
	// Write opens the device read-write. Leave it false for anything that
	// changes nothing: closing a block device opened for writing makes
	// udev's inotify watch re-probe the disk.
	Write bool
	// Flock is the BSD lock taken after opening (it is never O_EXCL,
	// which the kernel refuses while a partition is mounted). A Session
	// holds ExclusiveFlock on a read-only handle for the whole run and
	// writes through a second, unlocked one: when that one is closed,
	// udev's watch finds the disk locked and does not re-read its table.
	Flock FlockMode
	// LockTimeout bounds the wait for the lock (udev holds a shared lock
	// while it probes). Zero means 10 seconds.
	LockTimeout time.Duration
	// Paths is where the kernel's state is read (sysfs, mountinfo, udev);
	// empty fields mean the system's.
	Paths Paths
}

const defaultLockTimeout = 10 * time.Second

// Open opens a whole block device or a regular image file.
//
// Symlinks (such as /dev/disk/by-id/…) are resolved first. A partition node
// is refused with an error naming the disk it belongs to, and so is anything
// that is neither a block device nor a regular file. The device is never
// opened O_EXCL, because a partition of the disk may be mounted.
func Open(path string, opts OpenOptions) (*Handle, error) {
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
	opts.Paths = opts.Paths.orSystem()
	if isBlock {
		if err := refusePartition(opts.Paths, resolved); err != nil {
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
func refusePartition(root Paths, node string) error {
	disk, n, err := root.DiskForPartition(node)
	if errors.Is(err, ErrNotPartition) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", node, err)
	}
	return fmt.Errorf("open %s: %s is partition %d of %s; pass the whole disk", node, node, n, disk)
}

func newDevice(fd int, path string, opts OpenOptions) (*Handle, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	d := &Handle{fd: fd, path: path, writable: opts.Write, root: opts.Paths}
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
	if opts.Flock != NoFlock {
		if err := d.lock(opts); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Handle is an open block device or regular file: the I/O handle
// (Device) and, keyed by the disk's device number, the kernel's view of
// its partitions (Kernel).
type Handle struct {
	fd                 int
	path               string
	root               Paths
	writable           bool
	closed             bool
	block              bool
	rdev               uint64 // device number, block devices only
	size               int64
	sectorSize         int
	physicalSectorSize int
}

func (d *Handle) queryBlockDevice(write bool) error {
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

// lock takes the BSD lock opts.Flock asks for.
func (d *Handle) lock(opts OpenOptions) error {
	timeout := opts.LockTimeout
	if timeout == 0 {
		timeout = defaultLockTimeout
	}
	return flockWait(d.fd, d.path, opts.Flock == ExclusiveFlock, timeout, 50*time.Millisecond)
}

func (d *Handle) Path() string            { return d.path }
func (d *Handle) Size() int64             { return d.size }
func (d *Handle) SectorSize() int         { return d.sectorSize }
func (d *Handle) PhysicalSectorSize() int { return d.physicalSectorSize }
func (d *Handle) IsBlockDevice() bool     { return d.block }

// Identity names the disk independently of this handle.
func (d *Handle) Identity() Identity {
	id := Identity{Path: d.path}
	if d.block {
		id.DevNum = devNumString(d.rdev)
	}
	return id
}

// ReadAt reads like os.File.ReadAt: until p is full, io.EOF at the end.
func (d *Handle) ReadAt(p []byte, off int64) (int, error) {
	return pollfree.ReadAt(d.fd, d.path, p, off)
}

// WriteAt writes like os.File.WriteAt: all of p, or an error.
func (d *Handle) WriteAt(p []byte, off int64) (int, error) {
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

func (d *Handle) Sync() error {
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
func (d *Handle) Close() error {
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

// checkWritableRange refuses a change through a read-only handle or
// outside the device.
func (d *Handle) checkWritableRange(op string, off, length int64) error {
	if !d.writable {
		return fmt.Errorf("%s %s: device was opened read-only", op, d.path)
	}
	if off < 0 || length < 0 || off+length > d.size {
		return fmt.Errorf("%s %s: range [%d, %d) outside device of %d bytes", op, d.path, off, off+length, d.size)
	}
	return nil
}

// punchHole deallocates [off, off+length) of a regular file, keeping its
// size: the range reads as zeros.
func punchHole(fd int, off, length int64) error {
	return unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
}

// ZeroRange makes [off, off+length) read as zeros without writing them:
// a file gets a hole (and stays sparse), a block device gets BLKZEROOUT,
// which the kernel offloads to the device when it can and otherwise
// carries out itself. Callers fall back to writing zeros on an error.
func (d *Handle) ZeroRange(off, length int64) error {
	if err := d.checkWritableRange("zero", off, length); err != nil {
		return err
	}
	if length == 0 {
		return nil
	}
	fd := d.fd
	if !d.block {
		if err := punchHole(fd, off, length); err != nil {
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
func (d *Handle) Discard(off, length int64) error {
	if err := d.checkWritableRange("discard", off, length); err != nil {
		return err
	}
	fd := d.fd
	if !d.block {
		if length == 0 {
			return nil
		}
		err := punchHole(fd, off, length)
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
