package discover

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/google/uuid"
)

// fsIdentity is the label and UUID of a file system, as blkid prints them.
type fsIdentity struct {
	fsType, label, uuid string
}

// probeFS reads the label and UUID of the file systems sprout and the seed
// appliance use (ext2/3/4, vfat, xfs, btrfs, swap). ok is false when r
// holds none of them. Only magic numbers and fixed fields are read: enough
// to tell which device carries LABEL= or UUID=, not a full blkid.
func probeFS(r io.ReaderAt) (fsIdentity, bool) {
	buf := make([]byte, 64*1024+4096)
	n, _ := r.ReadAt(buf, 0)
	buf = buf[:n]
	at := func(off, length int) []byte {
		if off+length > len(buf) {
			return nil
		}
		return buf[off : off+length]
	}
	cstr := func(b []byte) string { return strings.TrimRight(string(bytes.TrimRight(b, "\x00")), " ") }

	// ext2/3/4: superblock at 1024, magic 0xEF53 at +56.
	if m := at(1024+56, 2); m != nil && binary.LittleEndian.Uint16(m) == 0xEF53 {
		return fsIdentity{"ext4", cstr(at(1024+120, 16)), uuidString(at(1024+104, 16))}, true
	}
	// xfs: "XFSB" at 0, UUID at 32, label at 108.
	if m := at(0, 4); m != nil && string(m) == "XFSB" {
		return fsIdentity{"xfs", cstr(at(108, 12)), uuidString(at(32, 16))}, true
	}
	// btrfs: superblock at 64 KiB, magic at +64, fsid at +32, label at +299.
	if m := at(65536+64, 8); m != nil && string(m) == "_BHRfS_M" {
		return fsIdentity{"btrfs", cstr(at(65536+299, 256)), uuidString(at(65536+32, 16))}, true
	}
	// swap (4 KiB pages): "SWAPSPACE2" ends the first page; UUID at 1024+12, label at 1024+28.
	if m := at(4096-10, 10); m != nil && string(m) == "SWAPSPACE2" {
		return fsIdentity{"swap", cstr(at(1024+28, 16)), uuidString(at(1024+12, 16))}, true
	}
	// FAT: boot signature, and the file system type string of FAT32 (at
	// 82) or FAT12/16 (at 54). The label and volume ID follow the BPB.
	if sig := at(510, 2); sig != nil && sig[0] == 0x55 && sig[1] == 0xAA {
		if t := at(82, 5); t != nil && string(t) == "FAT32" {
			return fsIdentity{"vfat", fatLabel(at(71, 11)), fatID(at(67, 4))}, true
		}
		if t := at(54, 3); t != nil && string(t) == "FAT" {
			return fsIdentity{"vfat", fatLabel(at(43, 11)), fatID(at(39, 4))}, true
		}
	}
	return fsIdentity{}, false
}

func uuidString(b []byte) string {
	u, err := uuid.FromBytes(b)
	if err != nil || u == uuid.Nil {
		return ""
	}
	return u.String()
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
