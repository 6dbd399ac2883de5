package discover

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/blockdev"
	"github.com/sprout-initrd/sprout/pkg/fstype"
	"github.com/sprout-initrd/sprout/pkg/gpt"
	"github.com/sprout-initrd/sprout/pkg/pollfree"
	"github.com/sprout-initrd/sprout/pkg/udevlink"
)

// hit is one device that matches a spec, and the disk it is on.
type hit struct {
	dev  *blockdev.BlockDevice // the matching partition (or whole device)
	disk *blockdev.BlockDevice
}

// resolveSpec turns a device spec from the kernel command line into the
// disk it names.
func resolveSpec(s *sysfs, spec string) (found, error) {
	if err := s.load(); err != nil {
		return found{}, err
	}
	key, value, _ := strings.Cut(spec, "=")
	switch {
	case strings.HasPrefix(spec, "/dev/"):
		return s.resolvePath(devPath(s.env, spec), spec)
	case key == "PARTLABEL" && value != "":
		return s.decide(spec, s.scanGPT(func(e gpt.Entry) bool { return e.Name == value }, "by-partlabel", value))
	case key == "PARTUUID" && value != "":
		// The kernel's root=PARTUUID=…/PARTNROFF=n names another partition
		// of the same disk; the disk is what matters here.
		value, _, _ = strings.Cut(value, "/")
		want, err := uuid.Parse(value)
		if err != nil {
			return found{}, fmt.Errorf("%s: %w", spec, err)
		}
		return s.decide(spec, s.scanGPT(func(e gpt.Entry) bool { return e.UUID == want }, "by-partuuid", want.String()))
	case key == "LABEL" && value != "":
		return s.decide(spec, s.scanFS(func(id fstype.Identity) bool { return id.Label == value }, "by-label", value))
	case key == "UUID" && value != "":
		return s.decide(spec, s.scanFS(func(id fstype.Identity) bool { return strings.EqualFold(id.UUID, value) }, "by-uuid", strings.ToLower(value)))
	}
	return found{}, fmt.Errorf("%q is not a device (expected /dev/…, PARTLABEL=, PARTUUID=, LABEL= or UUID=): %w", spec, ErrNotFound)
}

// resolveMount turns a mount method's source ("devnum:M:m" or "path:/dev/…")
// into the disk.
func resolveMount(s *sysfs, source string) (found, error) {
	if err := s.load(); err != nil {
		return found{}, err
	}
	if p, ok := strings.CutPrefix(source, "path:"); ok {
		return s.resolvePath(devPath(s.env, p), p)
	}
	num := strings.TrimPrefix(source, "devnum:")
	d, err := s.byDevNum(num)
	if err != nil {
		return found{}, err
	}
	return s.onDisk(d, fmt.Sprintf("mounted from %s (%s)", d.Node, num))
}

func (s *sysfs) resolvePath(path, shown string) (found, error) {
	d, err := s.byPath(path)
	if err != nil {
		return found{}, err
	}
	return s.onDisk(d, shown)
}

func (s *sysfs) onDisk(d *blockdev.BlockDevice, what string) (found, error) {
	disk, via, err := s.wholeDisk(d)
	if err != nil {
		return found{}, err
	}
	if len(via) == 0 {
		return found{disk: disk.Node, how: fmt.Sprintf("%s is the disk %s", what, disk.Node)}, nil
	}
	var chain []string
	for _, v := range via {
		chain = append(chain, v.Node)
	}
	return found{disk: disk.Node, how: fmt.Sprintf("%s is on the disk %s (via %s)", what, disk.Node, strings.Join(chain, " → "))}, nil
}

// scanResult collects matches and the devices that could not be read.
type scanResult struct {
	hits    []hit
	scanned []string
	errs    []string
}

// scanGPT reads the GPT of every disk and matches its entries; it adds the
// target of udev's /dev/disk/<linkDir>/<name> link, so a disk Find cannot
// read itself still counts (and a conflict still shows).
func (s *sysfs) scanGPT(match func(gpt.Entry) bool, linkDir, name string) scanResult {
	var r scanResult
	for _, d := range s.disks() {
		t, err := readGPT(d)
		if errors.Is(err, gpt.ErrNoLabel) || errors.Is(err, gpt.ErrOtherLabel) {
			r.scanned = append(r.scanned, d.Name)
			continue
		}
		if err != nil {
			r.errs = append(r.errs, fmt.Sprintf("%s: %v", d.Name, err))
			continue
		}
		r.scanned = append(r.scanned, d.Name)
		for _, e := range t.Entries {
			if !match(e) {
				continue
			}
			part := s.partitionOf(d, e.Index)
			r.hits = append(r.hits, hit{dev: part, disk: d})
		}
	}
	s.addLink(&r, linkDir, name)
	return r
}

// scanFS probes every partition and whole device for a file system label or
// UUID, plus udev's link.
func (s *sysfs) scanFS(match func(fstype.Identity) bool, linkDir, name string) scanResult {
	var r scanResult
	for _, d := range s.list {
		if d.Size == 0 || strings.HasPrefix(d.Name, "fd") {
			continue
		}
		f, err := os.Open(d.Node)
		if err != nil {
			r.errs = append(r.errs, fmt.Sprintf("%s: %v", d.Name, err))
			continue
		}
		id, ok := fstype.Identify(f)
		f.Close()
		r.scanned = append(r.scanned, d.Name)
		if !ok || !match(id) {
			continue
		}
		disk, _, err := s.wholeDisk(d)
		if err != nil {
			r.errs = append(r.errs, err.Error())
			continue
		}
		r.hits = append(r.hits, hit{dev: d, disk: disk})
	}
	s.addLink(&r, linkDir, name)
	return r
}

// addLink adds the device behind udev's by-* link, if there is one.
func (s *sysfs) addLink(r *scanResult, linkDir, name string) {
	link := filepath.Join(s.env.Dev, "disk", linkDir, udevlink.Escape(name))
	if _, err := os.Lstat(link); err != nil {
		return
	}
	d, err := s.byPath(link)
	if err != nil {
		r.errs = append(r.errs, fmt.Sprintf("udev link %s: %v", link, err))
		return
	}
	disk, _, err := s.wholeDisk(d)
	if err != nil {
		r.errs = append(r.errs, fmt.Sprintf("udev link %s: %v", link, err))
		return
	}
	for _, h := range r.hits {
		if h.dev.Name == d.Name {
			return
		}
	}
	r.hits = append(r.hits, hit{dev: d, disk: disk})
}

// decide turns a scan into one disk, or an error naming every candidate.
func (s *sysfs) decide(spec string, r scanResult) (found, error) {
	byDisk := map[string][]string{}
	var disks []string
	for _, h := range r.hits {
		if _, ok := byDisk[h.disk.Node]; !ok {
			disks = append(disks, h.disk.Node)
		}
		byDisk[h.disk.Node] = append(byDisk[h.disk.Node], h.dev.Node)
	}
	sort.Strings(disks)
	scanned := "scanned " + orNone(r.scanned)
	if len(r.errs) > 0 {
		scanned += "; could not read " + strings.Join(r.errs, ", ")
	}
	switch len(disks) {
	case 0:
		return found{}, fmt.Errorf("no device has %s (%s): %w", spec, scanned, ErrNotFound)
	case 1:
		return found{disk: disks[0], how: fmt.Sprintf("%s is %s on the disk %s", spec,
			strings.Join(byDisk[disks[0]], ", "), disks[0])}, nil
	}
	var each []string
	for _, d := range disks {
		each = append(each, fmt.Sprintf("%s (%s)", d, strings.Join(byDisk[d], ", ")))
	}
	return found{}, fmt.Errorf("%s is on %s: %w", spec, strings.Join(each, " and "), ErrAmbiguous)
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "no disks"
	}
	return strings.Join(names, ", ")
}

// partitionOf is the kernel's device for partition index of disk, or a
// stand-in named like the kernel would when the kernel has not added it.
func (s *sysfs) partitionOf(disk *blockdev.BlockDevice, index int) *blockdev.BlockDevice {
	for _, d := range s.devs {
		if d.Parent == disk.Name && d.Partition == index {
			return d
		}
	}
	name := blockdev.PartitionNode(disk.Name, index)
	return &blockdev.BlockDevice{Name: name, Node: filepath.Join(s.env.Dev, name), Partition: index, Parent: disk.Name}
}

// readGPT reads a disk's partition table, read-only. Opening for reading
// only matters: udev re-reads a disk's partitions whenever a writer closes it.
func readGPT(d *blockdev.BlockDevice) (*gpt.Table, error) {
	f, err := pollfree.Open(d.Node)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return gpt.Read(f, d.Size, d.SectorSize)
}
