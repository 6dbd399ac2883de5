package fstype

import (
	"bytes"
	"io"
	"strings"

	"github.com/google/uuid"
)

// Identity is the type, label and UUID of a file system, as blkid prints
// them.
type Identity struct {
	Type, Label, UUID string
}

// identifyOrder is the order superblocks are tried in. A device can carry
// more than one signature when a tool leaves old bytes in place (mkswap
// keeps the first 1024 bytes, where a FAT boot sector lives), so the
// formats whose signature the others' tools overwrite come first, FAT's
// boot sector last.
var identifyOrder = []*FS{&ext4, &xfs, &btrfs, &swap, &vfat}

// superblock is the start of a device, as much as every format's
// signature needs: btrfs's superblock is at 64 KiB.
type superblock []byte

const superblockSpan = 64*1024 + 4096

// at returns length bytes at off, nil when the device is shorter.
func (b superblock) at(off, length int) []byte {
	if off+length > len(b) {
		return nil
	}
	return b[off : off+length]
}

// Identify reads the label and UUID of the file systems sprout and the
// seed appliance use (ext2/3/4, vfat, xfs, btrfs, swap). ok is false when
// r holds none of them. Only magic numbers and fixed fields are read:
// enough to tell which device carries LABEL= or UUID=, not a full blkid.
func Identify(r io.ReaderAt) (Identity, bool) {
	buf := make([]byte, superblockSpan)
	n, _ := r.ReadAt(buf, 0)
	sb := superblock(buf[:n])
	for _, f := range identifyOrder {
		if id, ok := f.Identify(sb); ok {
			return id, true
		}
	}
	return Identity{}, false
}

// cstr is a NUL-padded (or blank-padded) string field.
func cstr(b []byte) string { return strings.TrimRight(string(bytes.TrimRight(b, "\x00")), " ") }

func uuidString(b []byte) string {
	u, err := uuid.FromBytes(b)
	if err != nil || u == uuid.Nil {
		return ""
	}
	return u.String()
}
