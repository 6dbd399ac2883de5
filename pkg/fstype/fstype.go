// Package fstype is the one table of the file systems sprout can make:
// spec accepts its names for Format=, the planner sizes new partitions by
// it and refuses what cannot be made, and mkfs runs its programs. It does
// no I/O; which programs exist is probed by the caller and passed in.
package fstype

import (
	"fmt"

	"github.com/sprout-initrd/sprout/pkg/compat"
)

const mib = 1 << 20

// FS is one file system sprout can make.
type FS struct {
	Name string
	// Program is the mkfs binary ("" for swap, whose header sprout writes).
	Program string
	// PlanMinimum is the smallest partition systemd-repart's planner
	// gives the file system (0: one grain), by version; it shapes the
	// layout, so it must be that version's number.
	PlanMinimum compat.ByVersion[uint64]
	// minBytes is the smallest range the tool formats (checked before the
	// first write; 252 finds out halfway, after other partitions changed).
	minBytes int64
	// minPages is swap's minimum in pages (the kernel and mkswap want 10).
	minPages int
}

// table: xfs refuses 300 MB or less since xfsprogs 5.19; mkfs.fat -F 32
// gives up below about 52 KiB (512-byte sectors) or 192 KiB (4096), and
// sprout asks 1 MiB rather than predict it; mke2fs fails below about
// 256 KiB and 252 gives ext4 1 MiB, so ext2/3 get that too; btrfs's
// planner minimum (256 MiB) suffices.
//
// The planner minimums changed: xfs 14 MiB → 300 MiB in 254 (NEWS 254:
// "default to a minimum size of 300MB for XFS"; the oracles give 300
// MiB), ext4 1 MiB → 32 MiB in 257 (NEWS silent; 254 has 1 MiB, 257 32
// MiB: 255 to 257). ext2 and ext3 have none in any version (the default
// 10 MiB applies), nor vfat and swap.
var table = []FS{
	{Name: "ext2", Program: "mkfs.ext2", minBytes: 1 * mib},
	{Name: "ext3", Program: "mkfs.ext3", minBytes: 1 * mib},
	{Name: "ext4", Program: "mkfs.ext4", minBytes: 1 * mib,
		PlanMinimum: compat.ByVersion[uint64]{{Since: 252, Value: 1 * mib}, {Since: 257, Value: 32 * mib}}},
	{Name: "vfat", Program: "mkfs.vfat", minBytes: 1 * mib},
	{Name: "swap", minPages: 10},
	{Name: "xfs", Program: "mkfs.xfs", minBytes: 300 * mib,
		PlanMinimum: compat.ByVersion[uint64]{{Since: 252, Value: 14 * mib}, {Since: 254, Value: 300 * mib}}},
	{Name: "btrfs", Program: "mkfs.btrfs", PlanMinimum: compat.Always[uint64](256 * mib)},
}

// Names lists the formats sprout can make, in the table's order.
func Names() []string {
	names := make([]string, len(table))
	for i, f := range table {
		names[i] = f.Name
	}
	return names
}

// Lookup returns the entry of a format.
func Lookup(name string) (FS, bool) {
	for _, f := range table {
		if f.Name == name {
			return f, true
		}
	}
	return FS{}, false
}

// MinSize is the smallest range the format can be made in; pageSize is
// the swap page size.
func (f FS) MinSize(pageSize int) int64 {
	if f.minPages > 0 {
		return int64(f.minPages) * int64(pageSize)
	}
	return f.minBytes
}

// Capabilities is what the running system can make: the caller probes
// it (Probe) and passes it to the planner in plan.Options.
type Capabilities struct {
	// PageSize is the swap page size; 0 means 4096.
	PageSize int
	// Have reports whether a mkfs program is present. Nil means not
	// probed: every program is assumed present (for planning without a
	// system, as the planner's own tests do).
	Have func(program string) bool
}

// Probe returns the capabilities of a system whose programs lookPath
// (exec.LookPath) finds, so a run without them is refused before any
// write. A program is looked up the first time the planner asks about
// it, at most once: a no-op run, which makes no file system, searches
// $PATH for nothing.
func Probe(pageSize int, lookPath func(string) (string, error)) Capabilities {
	found := map[string]bool{}
	return Capabilities{PageSize: pageSize, Have: func(program string) bool {
		have, done := found[program]
		if !done {
			_, err := lookPath(program)
			have = err == nil
			found[program] = have
		}
		return have
	}}
}

// Check returns an error when a file system of the format cannot be made
// in size bytes here: an unknown format, a missing program, too small.
func (c Capabilities) Check(format string, size int64) error {
	f, ok := Lookup(format)
	if !ok {
		return fmt.Errorf("cannot make a %q file system", format)
	}
	if f.Program != "" && c.Have != nil && !c.Have(f.Program) {
		return fmt.Errorf("%s is needed to make %s but was not found in $PATH", f.Program, format)
	}
	page := c.PageSize
	if page <= 0 {
		page = 4096
	}
	if min := f.MinSize(page); size < min {
		return fmt.Errorf("%d bytes is too small for %s (it needs at least %d bytes)", size, format, min)
	}
	return nil
}
