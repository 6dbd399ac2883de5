// Package fstype declares the file system formats sprout can make, one
// file per format (ext.go, vfat.go, swap.go, xfs.go, btrfs.go), each
// holding everything about it: its Format= name, the mkfs program and the
// packages that ship it, what else the initrd needs (kernel modules to
// mount it), its minimum sizes per systemd version, its command lines,
// its label rule and how to recognise its superblock. The repart.d parser
// accepts the names, the planner sizes and refuses by the minimums and the
// capabilities passed in, pkg/mkfs runs the command lines, discovery
// identifies file systems by label and UUID.
//
// Adding a format is one file declaring an FS, its entry in formats (and
// in identifyOrder when it can be recognised), and its test.
//
// It does no I/O; which programs exist is probed by the caller and passed
// in (Capabilities), and pkg/mkfs executes.
package fstype

import (
	"github.com/google/uuid"

	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/needs"
)

const mib = 1 << 20

// FS is everything about one file system format.
type FS struct {
	Name string
	// Program is the mkfs program sprout runs, and Package the packages
	// that ship it; "" when sprout writes the file system itself (Header).
	Program string
	Package needs.Package
	// Extra is what else making and using the file system needs: other
	// programs an initrd must carry (mkfs.ext4 is a link to mke2fs), the
	// kernel modules that mount it, host files the program reads.
	Extra needs.Set

	// PlanMinimum is the smallest partition systemd-repart's planner gives
	// the file system (0: one grain), per systemd version; it shapes the
	// layout, so each row must be that version's number.
	PlanMinimum compat.ByVersion[uint64]
	// ToolMinimum is the smallest range the format can be made in, checked
	// before the first write (252 itself finds out halfway, after other
	// partitions changed).
	ToolMinimum compat.ByVersion[Minimum]

	// Label is the label the file system gets for a partition label: cut
	// to the field's size, or rewritten into the characters it allows.
	Label func(partitionLabel string) string
	// Args is the command line that formats node, a device that covers
	// exactly the partition: systemd-repart 252's options. Nil when
	// Header makes the file system.
	Args func(req Request, node string) []string
	// InPlaceArgs is a command line that formats [offset, offset+size) of
	// the regular file path in place, without a loop device; nil when the
	// tool cannot.
	InPlaceArgs func(req Request, path string, offset, size int64) []string
	// TakesSectorSize: Args honours Request.SectorSize.
	TakesSectorSize bool
	// Header is the file system sprout writes itself, to be written at the
	// start of the range (swap: one page); nil when Args makes it.
	Header func(req Request, size int64, pageSize int) ([]byte, error)
	// Identify reads the type, label and UUID from the first bytes of a
	// device (Identify's buffer); nil when another declaration's Identify
	// covers its superblock (ext2 and ext3 are read as ext4).
	Identify func(b superblock) (Identity, bool)
}

// Request is one file system to make.
//
// mkfs is never asked to discard: sprout discards a new partition's range
// itself, in pieces and within a time budget (apply/discard.go); a
// discard by mkfs would be one request that nothing bounds (an SD card
// erases gigabytes for minutes). So the command lines carry the tools'
// no-discard options: 252's own with --discard=no.
type Request struct {
	Format string    // the FS's Name
	Label  string    // the partition label; FS.Label shortens it
	UUID   uuid.UUID // the file system UUID (vfat uses its first 4 bytes)
	// SectorSize, when not 0, is the sector size to make the file system
	// for instead of the device's (only formats with TakesSectorSize).
	SectorSize int
}

// Minimum is a smallest size, in bytes or, for swap, in pages.
type Minimum struct {
	Bytes int64
	Pages int64
}

// formats lists the declarations in the order messages name them.
var formats = []*FS{&ext2, &ext3, &ext4, &vfat, &swap, &xfs, &btrfs}

// Names lists the formats sprout can make, in the table's order.
func Names() []string {
	names := make([]string, len(formats))
	for i, f := range formats {
		names[i] = f.Name
	}
	return names
}

// Lookup returns the declaration of a format.
func Lookup(name string) (FS, bool) {
	for _, f := range formats {
		if f.Name == name {
			return *f, true
		}
	}
	return FS{}, false
}

// Needs is everything the format needs from the system: its program with
// its package, then Extra.
func (f FS) Needs() needs.Set {
	var own needs.Set
	if f.Program != "" {
		own.Programs = []needs.Program{{Name: f.Program, Package: f.Package}}
	}
	return own.Plus(f.Extra)
}

// MinSize is the smallest range the format can be made in under systemd
// version v; pageSize is the swap page size.
func (f FS) MinSize(v compat.Version, pageSize int) int64 {
	m := f.ToolMinimum.At(v)
	if m.Pages > 0 {
		return m.Pages * int64(pageSize)
	}
	return m.Bytes
}
