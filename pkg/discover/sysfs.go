package discover

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/sprout-initrd/sprout/pkg/blockdev"
)

// sysfs reads the block devices of Env.SysBlock once.
type sysfs struct {
	env    Env
	loaded bool
	list   []*blockdev.BlockDevice // sorted by name
	devs   map[string]*blockdev.BlockDevice
	err    error
}

// paths is the block layer's view of Env.
func (env Env) paths() blockdev.Paths {
	return blockdev.Paths{SysBlock: env.SysBlock, Dev: env.Dev, MountInfo: env.MountInfo}
}

func (s *sysfs) load() error {
	if s.loaded {
		return s.err
	}
	s.loaded = true
	s.devs = map[string]*blockdev.BlockDevice{}
	s.list, s.err = s.env.paths().BlockDevices()
	for _, d := range s.list {
		s.devs[d.Name] = d
	}
	return s.err
}

func (s *sysfs) byDevNum(devNum string) (*blockdev.BlockDevice, error) {
	if err := s.load(); err != nil {
		return nil, err
	}
	for _, d := range s.list {
		if d.DevNum == devNum {
			return d, nil
		}
	}
	return nil, fmt.Errorf("no block device %s in %s: %w", devNum, s.env.SysBlock, ErrNotFound)
}

// byPath finds the block device a /dev path (or a symlink to one, such as
// /dev/disk/by-id/…) stands for.
func (s *sysfs) byPath(path string) (*blockdev.BlockDevice, error) {
	if err := s.load(); err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (%w)", path, ErrNotFound, err)
	}
	for _, d := range s.list {
		if d.Node == real {
			return d, nil
		}
	}
	// A node whose name is not the kernel's: match the device number.
	if devNum, err := blockdev.DevNumOf(real); err == nil {
		return s.byDevNum(devNum)
	}
	return nil, fmt.Errorf("%s is not a block device known to %s: %w", path, s.env.SysBlock, ErrNotFound)
}

// wholeDisk goes from a device to the disk it lives on: from a partition to
// its disk, and from a dm or md device to the one device it is built on
// (dm-crypt, dm-verity, a linear LV on one disk). via lists the devices
// passed on the way, starting with d (empty when d is the disk).
func (s *sysfs) wholeDisk(d *blockdev.BlockDevice) (disk *blockdev.BlockDevice, via []*blockdev.BlockDevice, err error) {
	for range 16 { // stacks are shallow; this bounds a sysfs loop
		switch {
		case len(d.Slaves) > 1:
			return nil, nil, fmt.Errorf("%s is built on %d devices (%s), not on one disk: %w",
				d.Node, len(d.Slaves), strings.Join(d.Slaves, ", "), ErrAmbiguous)
		case len(d.Slaves) == 1:
			next, ok := s.devs[d.Slaves[0]]
			if !ok {
				return nil, nil, fmt.Errorf("%s is built on %s, which is not in %s: %w", d.Node, d.Slaves[0], s.env.SysBlock, ErrNotFound)
			}
			via = append(via, d)
			d = next
		case d.Partition > 0:
			p, ok := s.devs[d.Parent]
			if !ok {
				return nil, nil, fmt.Errorf("the disk %s of partition %s is not in %s: %w", d.Parent, d.Node, s.env.SysBlock, ErrNotFound)
			}
			return p, append(via, d), nil
		default:
			return d, via, nil
		}
	}
	return nil, nil, errors.New("block device stack too deep in sysfs")
}

// disks are the whole devices worth reading a partition table from.
func (s *sysfs) disks() []*blockdev.BlockDevice {
	var out []*blockdev.BlockDevice
	for _, d := range s.list {
		if d.Partition > 0 || d.Size == 0 || strings.HasPrefix(d.Name, "fd") {
			continue // floppies can block for seconds on a read
		}
		out = append(out, d)
	}
	return out
}
