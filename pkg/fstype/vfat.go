package fstype

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/needs"
)

// vfat is FAT32, made by mkfs.vfat (dosfstools) with 252's options. The
// kernel mounts it with the vfat driver and the code pages of its short
// and long names. mkfs.fat -F 32 gives up below about 52 KiB (512-byte
// sectors) or 192 KiB (4096), and sprout asks 1 MiB rather than predict
// it.
var vfat = FS{
	Name:    "vfat",
	Program: "mkfs.vfat",
	Package: needs.Package{Debian: "dosfstools", Fedora: "dosfstools", Arch: "dosfstools", Nixpkgs: "dosfstools"},
	Extra: needs.Set{Modules: []needs.Module{
		{Name: "vfat"}, {Name: "nls_cp437"}, {Name: "nls_iso8859-1"}, {Name: "nls_utf8"},
	}},
	PlanMinimum: compat.ByVersion[uint64]{{Since: 252, Value: 0}},
	ToolMinimum: compat.ByVersion[Minimum]{{Since: 252, Value: Minimum{Bytes: 1 * mib}}},
	Label:       vfatLabel,
	// On a node over the range (a loop device), as 252 formats it: mkfs.fat
	// sizes clusters and sectors from the device, which --offset= on an
	// image file does not reproduce (it takes the file's geometry).
	Args: func(req Request, node string) []string {
		args := []string{"mkfs.vfat", "-i", vfatID(req.UUID), "-n", vfatLabel(req.Label), "-F", "32"}
		if req.SectorSize != 0 {
			args = append(args, "-S", fmt.Sprint(req.SectorSize))
		}
		return append(args, node)
	},
	TakesSectorSize: true,
	Identify:        identifyFAT,
}

// vfatLabel turns a label into an 11-character FAT volume label: ASCII
// upper case, with characters FAT forbids (and non-ASCII) as '_'.
func vfatLabel(label string) string {
	var b strings.Builder
	for _, r := range label {
		if b.Len() == 11 {
			break
		}
		switch {
		case r >= 0x80 || r < 0x20 || r == 0x7f || strings.ContainsRune(`*?.,;:/\|+=<>[]"`, r):
			b.WriteByte('_')
		default:
			b.WriteString(strings.ToUpper(string(r)))
		}
	}
	return b.String()
}

// vfatID is the FAT volume serial number: the first four bytes of the
// file system UUID.
func vfatID(u uuid.UUID) string { return fmt.Sprintf("%08x", u[:4]) }

// identifyFAT: the boot signature, and the file system type string of
// FAT32 (at 82) or FAT12/16 (at 54). The label and volume ID follow the
// BPB.
func identifyFAT(b superblock) (Identity, bool) {
	if sig := b.at(510, 2); sig == nil || sig[0] != 0x55 || sig[1] != 0xAA {
		return Identity{}, false
	}
	if t := b.at(82, 5); t != nil && string(t) == "FAT32" {
		return Identity{"vfat", fatLabel(b.at(71, 11)), fatID(b.at(67, 4))}, true
	}
	if t := b.at(54, 3); t != nil && string(t) == "FAT" {
		return Identity{"vfat", fatLabel(b.at(43, 11)), fatID(b.at(39, 4))}, true
	}
	return Identity{}, false
}

// fatLabel is the boot sector's volume label; "NO NAME" means none.
func fatLabel(b []byte) string {
	l := strings.TrimRight(string(b), " \x00")
	if l == "NO NAME" {
		return ""
	}
	return l
}

// fatID formats the volume serial number as blkid does: "ABCD-1234".
func fatID(b []byte) string {
	if len(b) != 4 {
		return ""
	}
	v := binary.LittleEndian.Uint32(b)
	return fmt.Sprintf("%04X-%04X", v>>16, v&0xffff)
}
