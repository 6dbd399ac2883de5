package blockdev

import "strconv"

// PartitionNode returns the conventional node (or kernel name) of
// partition n of a disk: the kernel puts a "p" between the disk name and
// the number when the disk name ends in a digit (/dev/sda3,
// /dev/nvme0n1p3, /dev/loop0p3, /dev/mmcblk0p3). It is a naming rule
// only; the kernel's actual node is in sysfs (Paths.Partitions).
func PartitionNode(disk string, n int) string {
	if disk != "" && disk[len(disk)-1] >= '0' && disk[len(disk)-1] <= '9' {
		return disk + "p" + strconv.Itoa(n)
	}
	return disk + strconv.Itoa(n)
}
