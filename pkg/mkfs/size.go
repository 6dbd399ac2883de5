package mkfs

import "fmt"

// Smallest sizes the tools can format, checked before anything is written:
// systemd-repart 252 finds out in the middle of its run, after it has
// already wiped and formatted other partitions.
const (
	// swapMinPages: the kernel and mkswap want 10 pages at least.
	swapMinPages = 10
	// xfsMinSize: mkfs.xfs refuses file systems of 300 MB or less since
	// xfsprogs 5.19 ("Filesystem must be larger than 300MB").
	xfsMinSize = 300 << 20
	// vfatMinSize: mkfs.fat -F 32 gives up ("Too few blocks for viable
	// filesystem") below about 52 KiB with 512-byte sectors and 192 KiB
	// with 4096-byte ones; sprout asks for 1 MiB and does not try to
	// predict the exact limit.
	vfatMinSize = 1 << 20
	// extMinSize: mke2fs fails below about 256 KiB; 252's planner gives
	// ext4 1 MiB at least, and sprout asks the same of ext2 and ext3.
	extMinSize = 1 << 20
)

// CheckSize returns an error when a partition of size bytes is too small
// for a file system of the given format; pageSize is the swap page size.
func CheckSize(format string, size int64, pageSize int) error {
	var min int64
	switch format {
	case "swap":
		min = swapMinPages * int64(pageSize)
	case "xfs":
		min = xfsMinSize
	case "vfat":
		min = vfatMinSize
	case "ext2", "ext3", "ext4":
		min = extMinSize
	default:
		return nil // btrfs: the planner's minimum (256 MiB) suffices
	}
	if size < min {
		return fmt.Errorf("%d bytes is too small for %s (it needs at least %d bytes)", size, format, min)
	}
	return nil
}
