package blockdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sprout-initrd/sprout/pkg/pollfree"
	"golang.org/x/sys/unix"
)

// BlockDevice is one entry of the block class in sysfs: a disk, a
// partition, or a stacked device (dm, md).
type BlockDevice struct {
	Name       string   // kernel name: vda3, nvme0n1, dm-0
	Node       string   // device node under Paths.Dev
	DevNum     string   // "major:minor"
	Partition  int      // partition number; 0 for a whole device
	Parent     string   // the whole disk's name, for a partition
	Slaves     []string // devices a dm/md device is built on
	Size       int64    // bytes
	SectorSize int      // logical sector size (the disk's, for partitions)
}

// devNumString formats a device number as sysfs and mountinfo do.
func devNumString(rdev uint64) string {
	return fmt.Sprintf("%d:%d", unix.Major(rdev), unix.Minor(rdev))
}

// DevNumOf stats path (following symlinks) and returns its device number
// ("major:minor"), or an error if it is not a block device.
func DevNumOf(path string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return "", fmt.Errorf("%s is not a block device", path)
	}
	return devNumString(st.Rdev), nil
}

// dirOf returns the canonical sysfs directory of a block device,
// e.g. /sys/devices/virtual/block/loop0 or …/block/loop0/loop0p1.
func (r Paths) dirOf(devNum string) (string, error) {
	dir, err := filepath.EvalSymlinks(filepath.Join(r.orSystem().SysDevBlock, devNum))
	if err != nil {
		return "", fmt.Errorf("sysfs entry of block device %s: %w", devNum, err)
	}
	return dir, nil
}

// nodeOf returns the device node of the block device whose sysfs
// directory is dir. The kernel's DEVNAME is what devtmpfs and udev use; it
// differs from the sysfs name for names with a slash, like cciss/c0d0.
func (r Paths) nodeOf(dir string) string {
	name := filepath.Base(dir)
	for line := range strings.SplitSeq(readTrimmed(filepath.Join(dir, "uevent")), "\n") {
		if v, ok := strings.CutPrefix(line, "DEVNAME="); ok && v != "" {
			name = v
			break
		}
	}
	return filepath.Join(r.orSystem().Dev, name)
}

func readTrimmed(path string) string {
	b, err := pollfree.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func readSysfsInt(dir, name string) (int64, error) {
	b, err := pollfree.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", filepath.Join(dir, name), err)
	}
	return v, nil
}

// DiskForPartition returns the whole disk a partition node belongs to and
// the partition's number, from sysfs. For a node that is not a partition the
// error wraps ErrNotPartition.
func (r Paths) DiskForPartition(partPath string) (diskPath string, partNumber int, err error) {
	devNum, err := DevNumOf(partPath)
	if err != nil {
		return "", 0, err
	}
	dir, err := r.dirOf(devNum)
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
	return r.nodeOf(filepath.Dir(dir)), int(n), nil
}

// Partitions returns the kernel's partitions of the disk devNum, sorted
// by number. sysfs reports start and size in 512-byte units whatever the
// logical sector size; they are converted to bytes.
func (r Paths) Partitions(devNum string) ([]KernelPartition, error) {
	dirs, err := r.partitionDirs(devNum)
	if err != nil {
		return nil, err
	}
	var parts []KernelPartition
	for n, pdir := range dirs {
		start, err := readSysfsInt(pdir, "start")
		if err != nil {
			return nil, fmt.Errorf("partition %d: %w", n, err)
		}
		size, err := readSysfsInt(pdir, "size")
		if err != nil {
			return nil, fmt.Errorf("partition %d: %w", n, err)
		}
		parts = append(parts, KernelPartition{Number: n, Start: start * 512, Size: size * 512, Node: r.nodeOf(pdir)})
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	return parts, nil
}

// partitionDirs maps the partition numbers of the disk devNum to their
// sysfs directories.
func (r Paths) partitionDirs(devNum string) (map[int]string, error) {
	dir, err := r.dirOf(devNum)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read partitions: %w", err)
	}
	dirs := map[int]string{}
	for _, e := range entries {
		pdir := filepath.Join(dir, e.Name())
		n, err := readSysfsInt(pdir, "partition")
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			continue // not a partition (queue/, holders/, …) or removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		dirs[int(n)] = pdir
	}
	return dirs, nil
}

// BlockDevices reads every entry of the block class, sorted by name. A
// device that vanishes while it is read is left out.
func (r Paths) BlockDevices() ([]*BlockDevice, error) {
	root := r.orSystem()
	entries, err := os.ReadDir(root.SysBlock)
	if err != nil {
		return nil, fmt.Errorf("listing block devices: %w", err)
	}
	byName := map[string]*BlockDevice{}
	var devs []*BlockDevice
	for _, e := range entries {
		d, err := root.readBlockDevice(e.Name())
		if err != nil {
			continue
		}
		byName[d.Name] = d
		devs = append(devs, d)
	}
	for _, d := range devs {
		if p, ok := byName[d.Parent]; ok && d.Partition > 0 {
			d.SectorSize = p.SectorSize
		}
	}
	sort.Slice(devs, func(i, j int) bool { return devs[i].Name < devs[j].Name })
	return devs, nil
}

func (r Paths) readBlockDevice(name string) (*BlockDevice, error) {
	real, err := filepath.EvalSymlinks(filepath.Join(r.SysBlock, name))
	if err != nil {
		return nil, err
	}
	d := &BlockDevice{Name: name, Node: r.nodeOf(real), SectorSize: 512}
	d.DevNum = readTrimmed(filepath.Join(real, "dev"))
	if n, err := strconv.Atoi(readTrimmed(filepath.Join(real, "partition"))); err == nil && n > 0 {
		d.Partition = n
		d.Parent = filepath.Base(filepath.Dir(real))
	}
	if n, err := strconv.ParseInt(readTrimmed(filepath.Join(real, "size")), 10, 64); err == nil {
		d.Size = n * 512 // sysfs counts 512-byte units whatever the sector size
	}
	if n, err := strconv.Atoi(readTrimmed(filepath.Join(real, "queue", "logical_block_size"))); err == nil && n > 0 {
		d.SectorSize = n
	}
	if slaves, err := os.ReadDir(filepath.Join(real, "slaves")); err == nil {
		for _, sl := range slaves {
			d.Slaves = append(d.Slaves, sl.Name())
		}
	}
	return d, nil
}

// DiscardLimits are what the kernel's request queue says about discards.
type DiscardLimits struct {
	// MaxBytes is the most one discard request covers
	// (queue/discard_max_bytes); 0: the device cannot discard.
	MaxBytes int64
	// Granularity is the unit the device discards in
	// (queue/discard_granularity).
	Granularity int64
}

// DiscardLimits reads a block device's discard limits from sysfs.
func (d *Handle) DiscardLimits() (DiscardLimits, error) {
	if !d.block {
		return DiscardLimits{}, fmt.Errorf("%s: not a block device, no queue limits", d.path)
	}
	dir, err := d.root.dirOf(devNumString(d.rdev))
	if err != nil {
		return DiscardLimits{}, err
	}
	var l DiscardLimits
	if l.MaxBytes, err = readSysfsInt(dir, "queue/discard_max_bytes"); err != nil {
		return DiscardLimits{}, fmt.Errorf("%s: %w", d.path, err)
	}
	if l.Granularity, err = readSysfsInt(dir, "queue/discard_granularity"); err != nil {
		return DiscardLimits{}, fmt.Errorf("%s: %w", d.path, err)
	}
	return l, nil
}
