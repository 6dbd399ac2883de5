package mkfs

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/google/uuid"
)

// SwapHeader returns the first page of a Linux swap area ("SWAPSPACE2",
// version 1) of the given size: what mkswap writes, minus its bad-block
// scan. Writing it ourselves saves a tool in the initrd and a loop device.
//
// Layout of the page (little-endian): bytes 0–1023 are left for boot
// code; at 1024 version, last usable page, number of bad pages, the UUID
// (16 bytes) and the label (16 bytes, NUL-padded); the magic ends the page.
func SwapHeader(size int64, pageSize int, label string, id uuid.UUID) ([]byte, error) {
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
	copy(page[1036:1052], id[:])
	copy(page[1052:1068], SwapLabel(label))
	copy(page[pageSize-10:], "SWAPSPACE2")
	return page, nil
}

// WriteSwap writes a swap header at offset of w.
func WriteSwap(w io.WriterAt, offset, size int64, pageSize int, label string, id uuid.UUID) error {
	page, err := SwapHeader(size, pageSize, label, id)
	if err != nil {
		return err
	}
	if _, err := w.WriteAt(page, offset); err != nil {
		return fmt.Errorf("writing swap header at offset %d: %w", offset, err)
	}
	return nil
}
