package fstype

import (
	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/needs"
)

// xfs is made by mkfs.xfs (xfsprogs) with 252's options. 252's planner
// gives it 14 MiB at least, but mkfs.xfs refuses 300 MB or less since
// xfsprogs 5.19, so sprout refuses that before the first write; from 254
// on the planner gives it 300 MiB (NEWS 254: "default to a minimum size
// of 300MB for XFS"; docs/compatibility.md xfs-minimum).
var xfs = FS{
	Name:        "xfs",
	Program:     "mkfs.xfs",
	Package:     needs.Package{Debian: "xfsprogs", Fedora: "xfsprogs", Arch: "xfsprogs", Nixpkgs: "xfsprogs"},
	Extra:       needs.Set{Modules: []needs.Module{{Name: "xfs"}}},
	PlanMinimum: compat.ByVersion[uint64]{{Since: 252, Value: 14 * mib}, {Since: 254, Value: 300 * mib}},
	ToolMinimum: compat.ByVersion[Minimum]{{Since: 252, Value: Minimum{Bytes: 300 * mib}}},
	Label:       xfsLabel,
	Args: func(req Request, node string) []string {
		return []string{"mkfs.xfs", "-q", "-L", xfsLabel(req.Label), "-m", "uuid=" + req.UUID.String(), "-m", "reflink=1", node, "-K"}
	},
	Identify: func(b superblock) (Identity, bool) {
		// "XFSB" at 0, UUID at 32, label at 108.
		if m := b.at(0, 4); m == nil || string(m) != "XFSB" {
			return Identity{}, false
		}
		return Identity{"xfs", cstr(b.at(108, 12)), uuidString(b.at(32, 16))}, true
	},
}

// xfsLabel cuts a label to xfs's 12 bytes.
func xfsLabel(label string) string { return truncateUTF8(label, 12) }
