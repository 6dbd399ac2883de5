package blockdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Loop is an attached loop device over a byte range of a disk or file. It
// is created with LO_FLAGS_AUTOCLEAR and kept open, so if sprout dies the
// kernel detaches it on its own.
//
// sprout formats a new partition before its table entry exists (so a crash
// leaves either no partition or a complete one). mkfs therefore cannot be
// pointed at a partition node; it runs on a loop device covering exactly the
// future partition's bytes. mkfs cannot use the whole disk with an offset
// either: mke2fs and mkfs.fat open their target O_EXCL, which fails while any
// partition of the disk is mounted.
type Loop struct {
	f       *os.File
	path    string
	number  int
	backing string
	offset  int64
	size    int64
	// detachTimeout bounds how long Detach waits for other openers.
	detachTimeout time.Duration
}

const (
	attachAttempts  = 20
	detachTimeout   = 5 * time.Second
	loopLockTimeout = 5 * time.Second
)

// AttachLoop creates a loop device backed by path (a block device or regular
// file) covering exactly [offset, offset+size), with the given logical block
// size. The backing file is opened read-write but not O_EXCL, so a disk with
// mounted partitions can back it. The loop device is held with a BSD
// LOCK_EX (udev's block-device locking protocol) so udev leaves it alone
// while it is being written; other processes (mkfs) can still open it.
func AttachLoop(path string, offset, size int64, blockSize int) (*Loop, error) {
	return attach(path, offset, size, blockSize, true)
}

// attach is AttachLoop; withConfigure=false skips LOOP_CONFIGURE so tests can
// exercise the fallback used on kernels older than 5.8.
func attach(path string, offset, size int64, blockSize int, withConfigure bool) (*Loop, error) {
	what := fmt.Sprintf("attach loop device to %s [%d, %d) with %d-byte blocks", path, offset, offset+size, blockSize)
	if blockSize < 512 || blockSize > os.Getpagesize() || blockSize&(blockSize-1) != 0 {
		return nil, fmt.Errorf("%s: block size must be a power of two between 512 and %d", what, os.Getpagesize())
	}
	bs := int64(blockSize)
	if offset < 0 || size <= 0 || offset%bs != 0 || size%bs != 0 {
		return nil, fmt.Errorf("%s: offset and size must be non-negative multiples of the block size (size > 0)", what)
	}
	backing, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	// The kernel keeps its own reference to the backing file.
	defer backing.Close()
	backingSize, err := sizeOf(backing)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if offset+size > backingSize {
		return nil, fmt.Errorf("%s: range ends beyond the backing size of %d bytes", what, backingSize)
	}

	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer ctl.Close()

	info := unix.LoopInfo64{Offset: uint64(offset), Sizelimit: uint64(size), Flags: unix.LO_FLAGS_AUTOCLEAR}
	copy(info.File_name[:len(info.File_name)-1], path)
	var lastErr error
	for range attachAttempts {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("%s: LOOP_CTL_GET_FREE: %w", what, err)
		}
		node := "/dev/loop" + strconv.Itoa(n)
		f, err := os.OpenFile(node, os.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			// Another process may have removed the device between
			// GET_FREE and open.
			lastErr = err
			time.Sleep(10 * time.Millisecond)
			continue
		}
		err = configure(int(f.Fd()), int(backing.Fd()), &info, blockSize, withConfigure)
		if errors.Is(err, unix.EBUSY) {
			// Another process bound the same free device first.
			f.Close()
			lastErr = err
			continue
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %s: %w", what, node, err)
		}
		l := &Loop{f: f, path: node, number: n, backing: backingName(backing), offset: offset, size: size, detachTimeout: detachTimeout}
		if err := l.check(blockSize); err != nil {
			l.Detach()
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if err := l.lock(); err != nil {
			l.Detach()
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return l, nil
	}
	return nil, fmt.Errorf("%s: no free loop device after %d attempts: %w", what, attachAttempts, lastErr)
}

// configure binds the backing fd to the loop fd in one step with
// LOOP_CONFIGURE (Linux 5.8+), or else with LOOP_SET_FD, LOOP_SET_STATUS64
// and LOOP_SET_BLOCK_SIZE.
func configure(loopFd, backingFd int, info *unix.LoopInfo64, blockSize int, withConfigure bool) error {
	if withConfigure {
		cfg := unix.LoopConfig{Fd: uint32(backingFd), Size: uint32(blockSize), Info: *info}
		err := unix.IoctlLoopConfigure(loopFd, &cfg)
		if !errors.Is(err, unix.ENOTTY) && !errors.Is(err, unix.EINVAL) {
			if err != nil {
				return fmt.Errorf("LOOP_CONFIGURE: %w", err)
			}
			return nil
		}
	}
	if err := unix.IoctlSetInt(loopFd, unix.LOOP_SET_FD, backingFd); err != nil {
		return fmt.Errorf("LOOP_SET_FD: %w", err)
	}
	fail := func(step string, err error) error {
		unix.IoctlSetInt(loopFd, unix.LOOP_CLR_FD, 0) // undo the half-configured device
		return fmt.Errorf("%s: %w", step, err)
	}
	if err := unix.IoctlLoopSetStatus64(loopFd, info); err != nil {
		// EBUSY here would be misread as "device taken" by the caller.
		return fail("LOOP_SET_STATUS64", noBusy(err))
	}
	if err := unix.IoctlSetInt(loopFd, unix.LOOP_SET_BLOCK_SIZE, blockSize); err != nil {
		return fail("LOOP_SET_BLOCK_SIZE", noBusy(err))
	}
	return nil
}

// noBusy hides EBUSY from errors.Is so that only a lost race for the loop
// device itself is retried.
func noBusy(err error) error {
	if errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("device busy (%s)", err.Error())
	}
	return err
}

// check verifies the kernel's idea of the loop device's size and block size.
func (l *Loop) check(blockSize int) error {
	fd := int(l.f.Fd())
	size, err := deviceBytes(fd)
	if err != nil {
		return fmt.Errorf("%s: %w", l.path, err)
	}
	if size != l.size {
		return fmt.Errorf("%s: kernel reports %d bytes, want %d", l.path, size, l.size)
	}
	ss, err := logicalSectorSize(fd)
	if err != nil {
		return fmt.Errorf("%s: %w", l.path, err)
	}
	if ss != blockSize {
		return fmt.Errorf("%s: kernel reports %d-byte sectors, want %d", l.path, ss, blockSize)
	}
	return nil
}

// lock takes LOCK_EX on the loop device; udev may hold a shared lock for a
// moment while it probes the device it just saw appear.
func (l *Loop) lock() error {
	return flockWait(int(l.f.Fd()), l.path, true, loopLockTimeout, 20*time.Millisecond)
}

// Path is the loop device node, /dev/loopN.
func (l *Loop) Path() string { return l.path }

// Sync flushes the loop device; the loop driver passes the flush on to the
// backing file or device.
func (l *Loop) Sync() error {
	if l.f == nil {
		return fmt.Errorf("sync %s: already detached", l.path)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", l.path, err)
	}
	return nil
}

// Detach flushes and detaches the loop device and waits until the kernel
// has let go of it. Another process that still has it open (udev probing,
// a slow mkfs child) delays the detach; if it never ends, Detach fails.
// Calling Detach again is a no-op.
func (l *Loop) Detach() error {
	if l.f == nil {
		return nil
	}
	syncErr := l.f.Sync()
	fd := int(l.f.Fd())
	deadline := time.Now().Add(l.detachTimeout)
	for {
		err := unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0)
		if err == nil || errors.Is(err, unix.ENXIO) { // ENXIO: already unbound
			break
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("detach %s: LOOP_CLR_FD: %w", l.path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// With other openers the kernel only marks the device for autoclear;
	// the detach happens at the last close, ours or theirs.
	l.f.Close()
	l.f = nil
	for !l.detached() {
		if time.Now().After(deadline) {
			return fmt.Errorf("detach %s: still attached after %s (held open by another process?)", l.path, l.detachTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if syncErr != nil {
		return fmt.Errorf("detach %s: flush: %w", l.path, syncErr)
	}
	return nil
}

// detached reports whether loop device number l.number no longer serves our
// range. It reads sysfs instead of opening the node, because an open would
// itself delay the autoclear. Another process may have re-used the number
// already, so a binding to a different file or range also counts.
func (l *Loop) detached() bool {
	dir := fmt.Sprintf("/sys/block/loop%d/loop", l.number)
	backing, err := os.ReadFile(filepath.Join(dir, "backing_file"))
	if err != nil {
		return true
	}
	offset, err := os.ReadFile(filepath.Join(dir, "offset"))
	if err != nil {
		return true
	}
	return strings.TrimSpace(string(backing)) != l.backing ||
		strings.TrimSpace(string(offset)) != strconv.FormatInt(l.offset, 10)
}

// backingName is the path the kernel shows in sysfs backing_file: the
// absolute path of the open file.
func backingName(f *os.File) string {
	name, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		return f.Name()
	}
	return name
}

func sizeOf(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	switch {
	case st.Mode().IsRegular():
		return st.Size(), nil
	case st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0:
		return deviceBytes(int(f.Fd()))
	default:
		return 0, fmt.Errorf("%s is neither a block device nor a regular file", f.Name())
	}
}
