package blockdev

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctlPtr issues an ioctl whose argument is a pointer to *arg.
func ioctlPtr[T any](fd int, req uint, arg *T) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(arg)))
	if errno != 0 {
		return errno
	}
	return nil
}

// deviceBytes returns the size in bytes of the block device open as fd.
func deviceBytes(fd int) (int64, error) {
	var size uint64
	if err := ioctlPtr(fd, unix.BLKGETSIZE64, &size); err != nil {
		return 0, fmt.Errorf("BLKGETSIZE64: %w", err)
	}
	return int64(size), nil
}

// logicalSectorSize returns the logical sector size of the block device
// open as fd.
func logicalSectorSize(fd int) (int, error) {
	ss, err := unix.IoctlGetInt(fd, unix.BLKSSZGET)
	if err != nil {
		return 0, fmt.Errorf("BLKSSZGET: %w", err)
	}
	return ss, nil
}
