package fstype

import (
	"encoding/binary"
	"fmt"

	"github.com/sprout-initrd/sprout/pkg/compat"
)

// swap is a Linux swap area, whose one-page header sprout writes itself
// (Header): no program, no loop device, nothing to carry in the initrd.
// The kernel and mkswap want 10 pages at least; 252's planner gives it no
// minimum of its own.
var swap = FS{
	Name:        "swap",
	PlanMinimum: compat.ByVersion[uint64]{{Since: 252, Value: 0}},
	ToolMinimum: compat.ByVersion[Minimum]{{Since: 252, Value: Minimum{Pages: 10}}},
	Label:       swapLabel,
	Header:      swapHeader,
	Identify: func(b superblock) (Identity, bool) {
		// 4 KiB pages: "SWAPSPACE2" ends the first page; UUID at 1024+12,
		// label at 1024+28.
		if m := b.at(4096-10, 10); m == nil || string(m) != "SWAPSPACE2" {
			return Identity{}, false
		}
		return Identity{"swap", cstr(b.at(1024+28, 16)), uuidString(b.at(1024+12, 16))}, true
	},
}

// swapLabel cuts a label to the 15 bytes the swap header holds.
func swapLabel(label string) string { return truncateUTF8(label, 15) }

// swapHeader returns the first page of a Linux swap area ("SWAPSPACE2",
// version 1) of the given size: what mkswap writes, minus its bad-block
// scan. Writing it ourselves saves a tool in the initrd and a loop device.
//
// Layout of the page (little-endian): bytes 0–1023 are left for boot
// code; at 1024 version, last usable page, number of bad pages, the UUID
// (16 bytes) and the label (16 bytes, NUL-padded); the magic ends the page.
func swapHeader(req Request, size int64, pageSize int) ([]byte, error) {
	pages := size / int64(pageSize)
	if pages < 10 {
		return nil, fmt.Errorf("swap area of %d bytes is too small (at least 10 pages of %d bytes)", size, pageSize)
	}
	if pages-1 > int64(^uint32(0)) {
		pages = int64(^uint32(0)) + 1
	}
	page := make([]byte, pageSize)
	binary.LittleEndian.PutUint32(page[1024:], 1)
	binary.LittleEndian.PutUint32(page[1028:], uint32(pages-1))
	copy(page[1036:1052], req.UUID[:])
	copy(page[1052:1068], swapLabel(req.Label))
	copy(page[pageSize-10:], "SWAPSPACE2")
	return page, nil
}
