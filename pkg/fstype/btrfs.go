package fstype

import (
	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/needs"
)

// btrfs is made by mkfs.btrfs (btrfs-progs) with 252's options. 252's
// planner gives it 256 MiB at least, which mkfs.btrfs accepts, so the
// tool's own minimum adds nothing.
var btrfs = FS{
	Name:        "btrfs",
	Program:     "mkfs.btrfs",
	Package:     needs.Package{Debian: "btrfs-progs", Fedora: "btrfs-progs", Arch: "btrfs-progs", Nixpkgs: "btrfs-progs"},
	Extra:       needs.Set{Modules: []needs.Module{{Name: "btrfs"}}},
	PlanMinimum: compat.ByVersion[uint64]{{Since: 252, Value: 256 * mib}},
	ToolMinimum: compat.ByVersion[Minimum]{{Since: 252, Value: Minimum{}}},
	// btrfs keeps labels up to 255 bytes, longer than any GPT label.
	Label: func(label string) string { return label },
	Args: func(req Request, node string) []string {
		return []string{"mkfs.btrfs", "-q", "-L", req.Label, "-U", req.UUID.String(), node, "--nodiscard"}
	},
	Identify: func(b superblock) (Identity, bool) {
		// The superblock is at 64 KiB: magic at +64, fsid at +32, label at +299.
		if m := b.at(65536+64, 8); m == nil || string(m) != "_BHRfS_M" {
			return Identity{}, false
		}
		return Identity{"btrfs", cstr(b.at(65536+299, 256)), uuidString(b.at(65536+32, 16))}, true
	},
}
