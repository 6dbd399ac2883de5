package discover

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

// blockDev is one entry of /sys/class/block.
type blockDev struct {
	name       string   // kernel name: vda3, nvme0n1, dm-0
	node       string   // device node under Env.Dev
	devNum     string   // "major:minor"
	partition  int      // partition number; 0 for a whole device
	parent     string   // the whole disk's name, for a partition
	slaves     []string // devices a dm/md device is built on
	size       int64    // bytes
	sectorSize int      // logical sector size (the parent's, for partitions)
}

// sysfs reads the block devices of Env.SysBlock once.
type sysfs struct {
	env    Env
	loaded bool
	devs   map[string]*blockDev
	err    error
}

func (s *sysfs) load() error {
	if s.loaded {
		return s.err
	}
	s.loaded = true
	s.devs = map[string]*blockDev{}
	entries, err := os.ReadDir(s.env.SysBlock)
	if err != nil {
		s.err = fmt.Errorf("listing block devices: %w", err)
		return s.err
	}
	for _, e := range entries {
		d, err := s.readDev(e.Name())
		if err != nil {
			continue // a device that vanished while we looked
		}
		s.devs[d.name] = d
	}
	for _, d := range s.devs {
		if p, ok := s.devs[d.parent]; ok && d.partition > 0 {
			d.sectorSize = p.sectorSize
		}
	}
	return nil
}

func (s *sysfs) readDev(name string) (*blockDev, error) {
	dir := filepath.Join(s.env.SysBlock, name)
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	d := &blockDev{name: name, node: filepath.Join(s.env.Dev, devName(real, name)), sectorSize: 512}
	d.devNum = readTrimmed(filepath.Join(real, "dev"))
	if n, err := strconv.Atoi(readTrimmed(filepath.Join(real, "partition"))); err == nil && n > 0 {
		d.partition = n
		d.parent = filepath.Base(filepath.Dir(real))
	}
	if n, err := strconv.ParseInt(readTrimmed(filepath.Join(real, "size")), 10, 64); err == nil {
		d.size = n * 512 // sysfs counts 512-byte units whatever the sector size
	}
	if n, err := strconv.Atoi(readTrimmed(filepath.Join(real, "queue", "logical_block_size"))); err == nil && n > 0 {
		d.sectorSize = n
	}
	if slaves, err := os.ReadDir(filepath.Join(real, "slaves")); err == nil {
		for _, sl := range slaves {
			d.slaves = append(d.slaves, sl.Name())
		}
	}
	return d, nil
}

// devName is the node name the kernel gives a device (uevent DEVNAME; it
// differs from the sysfs name for names with a slash, like cciss/c0d0).
func devName(dir, name string) string {
	for line := range strings.SplitSeq(readTrimmed(filepath.Join(dir, "uevent")), "\n") {
		if v, ok := strings.CutPrefix(line, "DEVNAME="); ok && v != "" {
			return v
		}
	}
	return name
}

func readTrimmed(path string) string {
	b, err := plainfile.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// sorted returns the devices ordered by name, for stable messages.
func (s *sysfs) sorted() []*blockDev {
	out := make([]*blockDev, 0, len(s.devs))
	for _, d := range s.devs {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (s *sysfs) byDevNum(devNum string) (*blockDev, error) {
	if err := s.load(); err != nil {
		return nil, err
	}
	for _, d := range s.sorted() {
		if d.devNum == devNum {
			return d, nil
		}
	}
	return nil, fmt.Errorf("no block device %s in %s: %w", devNum, s.env.SysBlock, ErrNotFound)
}

// byPath finds the block device a /dev path (or a symlink to one, such as
// /dev/disk/by-id/…) stands for.
func (s *sysfs) byPath(path string) (*blockDev, error) {
	if err := s.load(); err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (%w)", path, ErrNotFound, err)
	}
	for _, d := range s.sorted() {
		if d.node == real {
			return d, nil
		}
	}
	// A node whose name is not the kernel's: match the device number.
	var st unix.Stat_t
	if err := unix.Stat(real, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK {
		return s.byDevNum(fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)))
	}
	return nil, fmt.Errorf("%s is not a block device known to %s: %w", path, s.env.SysBlock, ErrNotFound)
}

// wholeDisk goes from a device to the disk it lives on: from a partition to
// its disk, and from a dm or md device to the one device it is built on
// (dm-crypt, dm-verity, a linear LV on one disk). via lists the devices
// passed on the way, starting with d (empty when d is the disk).
func (s *sysfs) wholeDisk(d *blockDev) (disk *blockDev, via []*blockDev, err error) {
	for range 16 { // stacks are shallow; this bounds a sysfs loop
		switch {
		case len(d.slaves) > 1:
			return nil, nil, fmt.Errorf("%s is built on %d devices (%s), not on one disk: %w",
				d.node, len(d.slaves), strings.Join(d.slaves, ", "), ErrAmbiguous)
		case len(d.slaves) == 1:
			next, ok := s.devs[d.slaves[0]]
			if !ok {
				return nil, nil, fmt.Errorf("%s is built on %s, which is not in %s: %w", d.node, d.slaves[0], s.env.SysBlock, ErrNotFound)
			}
			via = append(via, d)
			d = next
		case d.partition > 0:
			p, ok := s.devs[d.parent]
			if !ok {
				return nil, nil, fmt.Errorf("the disk %s of partition %s is not in %s: %w", d.parent, d.node, s.env.SysBlock, ErrNotFound)
			}
			return p, append(via, d), nil
		default:
			return d, via, nil
		}
	}
	return nil, nil, errors.New("block device stack too deep in sysfs")
}

// disks are the whole devices worth reading a partition table from.
func (s *sysfs) disks() []*blockDev {
	var out []*blockDev
	for _, d := range s.sorted() {
		if d.partition > 0 || d.size == 0 || strings.HasPrefix(d.name, "fd") {
			continue // floppies can block for seconds on a read
		}
		out = append(out, d)
	}
	return out
}
