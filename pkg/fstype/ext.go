package fstype

import (
	"encoding/binary"
	"fmt"

	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/needs"
)

// ext2, ext3 and ext4 are made by mke2fs (e2fsprogs) with 252's options;
// they differ only in the program's name and the journal. The kernel's
// ext4 driver mounts all three. mke2fs fails below about 256 KiB and 252
// gives ext4 1 MiB, so the three get that as their minimum. systemd-repart
// plans ext4 at 32 MiB from 257 on (NEWS silent; 254 has 1 MiB, 257 32:
// 255 to 257; docs/compatibility.md ext4-minimum); ext2 and ext3 have no
// planner minimum in any version (the default 10 MiB decides).
var (
	ext2 = extFS("ext2", false, compat.ByVersion[uint64]{{Since: 252, Value: 0}})
	ext3 = extFS("ext3", true, compat.ByVersion[uint64]{{Since: 252, Value: 0}})
	ext4 = withIdentify(extFS("ext4", true, compat.ByVersion[uint64]{{Since: 252, Value: 1 * mib}, {Since: 257, Value: 32 * mib}}), identifyExt)
)

var e2fsprogs = needs.Package{Debian: "e2fsprogs", Fedora: "e2fsprogs", Arch: "e2fsprogs", Nixpkgs: "e2fsprogs"}

func extFS(name string, journal bool, planMinimum compat.ByVersion[uint64]) FS {
	program := "mkfs." + name
	args := func(req Request, node string) []string {
		a := []string{program, "-q", "-L", extLabel(req.Label), "-U", req.UUID.String(), "-I", "256"}
		if journal {
			a = append(a, "-O", "has_journal")
		}
		return append(a, "-m", "0", "-E", "nodiscard,lazy_itable_init=1", "-T", "default", node)
	}
	return FS{
		Name:    name,
		Program: program,
		Package: e2fsprogs,
		Extra: needs.Set{
			// mkfs.extN is mke2fs under another name; mke2fs takes its
			// feature defaults from /etc/mke2fs.conf, as on the host.
			Programs: []needs.Program{{Name: "mke2fs", Package: e2fsprogs}},
			Modules:  []needs.Module{{Name: "ext4"}},
			Files:    []string{"/etc/mke2fs.conf"},
		},
		PlanMinimum: planMinimum,
		ToolMinimum: compat.ByVersion[Minimum]{{Since: 252, Value: Minimum{Bytes: 1 * mib}}},
		Label:       extLabel,
		Args:        args,
		// In place: the same options with the range added to -E, and -F,
		// since mke2fs sees the image's partition table at offset 0 and
		// would otherwise ask for confirmation.
		InPlaceArgs: func(req Request, path string, offset, size int64) []string {
			a := args(req, path)
			a = a[:len(a)-1]
			for i := range a {
				if a[i] == "-E" {
					a[i+1] = fmt.Sprintf("%s,offset=%d", a[i+1], offset)
				}
			}
			return append(a, "-F", path, fmt.Sprintf("%dk", size/1024))
		},
	}
}

func withIdentify(f FS, identify func(superblock) (Identity, bool)) FS {
	f.Identify = identify
	return f
}

// extLabel cuts a label to ext's 16 bytes without splitting a character.
func extLabel(label string) string { return truncateUTF8(label, 16) }

// identifyExt: the superblock is at 1024, magic 0xEF53 at +56, UUID at
// +104, label at +120. ext2, ext3 and ext4 share it; blkid tells them
// apart by features, which discovery does not need, so all read as ext4.
func identifyExt(b superblock) (Identity, bool) {
	if m := b.at(1024+56, 2); m == nil || binary.LittleEndian.Uint16(m) != 0xEF53 {
		return Identity{}, false
	}
	return Identity{"ext4", cstr(b.at(1024+120, 16)), uuidString(b.at(1024+104, 16))}, true
}
