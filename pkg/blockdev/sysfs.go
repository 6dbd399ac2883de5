package blockdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sprout-initrd/sprout/pkg/plainfile"
)

// KernelPartition is one partition as the kernel currently sees it (sysfs).
type KernelPartition struct {
	Number int
	// Start and Size are in bytes.
	Start, Size int64
	// Node is the device node, e.g. /dev/loop0p3.
	Node string
}

// sysfsDir returns the canonical sysfs directory of a block device number,
// e.g. /sys/devices/virtual/block/loop0 or …/block/loop0/loop0p1.
func sysfsDir(rdev uint64) (string, error) {
	link := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(rdev), unix.Minor(rdev))
	dir, err := filepath.EvalSymlinks(link)
	if err != nil {
		return "", fmt.Errorf("sysfs entry of block device %d:%d: %w", unix.Major(rdev), unix.Minor(rdev), err)
	}
	return dir, nil
}

// nodeOf returns the /dev path of the block device whose sysfs directory is
// dir. The kernel's DEVNAME is what devtmpfs and udev use.
func nodeOf(dir string) string {
	if b, err := plainfile.ReadFile(filepath.Join(dir, "uevent")); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if name, ok := strings.CutPrefix(line, "DEVNAME="); ok && name != "" {
				return "/dev/" + name
			}
		}
	}
	return "/dev/" + filepath.Base(dir)
}

func readSysfsInt(dir, name string) (int64, error) {
	b, err := plainfile.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", filepath.Join(dir, name), err)
	}
	return v, nil
}

// blockDeviceNumber stats path (following symlinks) and returns its device
// number, or an error if it is not a block device.
func blockDeviceNumber(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, fmt.Errorf("%s is not a block device", path)
	}
	return st.Rdev, nil
}

// DiskForPartition returns the whole disk a partition node belongs to and
// the partition's number, from sysfs. For a node that is not a partition the
// error wraps ErrNotPartition.
func DiskForPartition(partPath string) (diskPath string, partNumber int, err error) {
	rdev, err := blockDeviceNumber(partPath)
	if err != nil {
		return "", 0, err
	}
	dir, err := sysfsDir(rdev)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", partPath, err)
	}
	n, err := readSysfsInt(dir, "partition")
	if errors.Is(err, os.ErrNotExist) {
		return "", 0, fmt.Errorf("%s: %w", partPath, ErrNotPartition)
	}
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", partPath, err)
	}
	return nodeOf(filepath.Dir(dir)), int(n), nil
}

// PartitionNode returns the conventional node of partition n of a disk:
// the kernel puts a "p" between the disk name and the number when the disk
// name ends in a digit (/dev/sda3, /dev/nvme0n1p3, /dev/loop0p3,
// /dev/mmcblk0p3). It is a naming rule only; KernelPartitions reports the
// kernel's actual node.
func PartitionNode(diskPath string, n int) string {
	if diskPath != "" && diskPath[len(diskPath)-1] >= '0' && diskPath[len(diskPath)-1] <= '9' {
		return diskPath + "p" + strconv.Itoa(n)
	}
	return diskPath + strconv.Itoa(n)
}

// blockDevice returns dev as our block device, or nil for regular files
// (for which kernel-side operations are no-ops).
func blockDevice(dev Device) (*device, error) {
	if !dev.IsBlockDevice() {
		return nil, nil
	}
	d, ok := dev.(*device)
	if !ok {
		return nil, fmt.Errorf("%s: block device was not opened by blockdev.Open", dev.Path())
	}
	return d, nil
}

// KernelPartitions returns the kernel's partitions of dev, sorted by number.
// sysfs reports start and size in 512-byte units whatever the logical sector
// size; they are converted to bytes. Regular files have none.
func KernelPartitions(dev Device) ([]KernelPartition, error) {
	d, err := blockDevice(dev)
	if d == nil || err != nil {
		return nil, err
	}
	return kernelPartitions(d)
}

func kernelPartitions(d *device) ([]KernelPartition, error) {
	dir, err := sysfsDir(d.rdev)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.path, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: read partitions: %w", d.path, err)
	}
	var parts []KernelPartition
	for _, e := range entries {
		pdir := filepath.Join(dir, e.Name())
		n, err := readSysfsInt(pdir, "partition")
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			continue // not a partition (queue/, holders/, …) or removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.path, err)
		}
		start, err := readSysfsInt(pdir, "start")
		if err != nil {
			return nil, fmt.Errorf("%s: partition %d: %w", d.path, n, err)
		}
		size, err := readSysfsInt(pdir, "size")
		if err != nil {
			return nil, fmt.Errorf("%s: partition %d: %w", d.path, n, err)
		}
		parts = append(parts, KernelPartition{Number: int(n), Start: start * 512, Size: size * 512, Node: nodeOf(pdir)})
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	return parts, nil
}

// kernelPartition returns partition n of d, or ok=false if the kernel has none.
func kernelPartition(d *device, n int) (p KernelPartition, ok bool, err error) {
	parts, err := kernelPartitions(d)
	if err != nil {
		return KernelPartition{}, false, err
	}
	for _, p := range parts {
		if p.Number == n {
			return p, true, nil
		}
	}
	return KernelPartition{}, false, nil
}
