//go:build qemu

package qemu

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// A torn table: the state a power cut while a GPT copy is written can
// leave. Each damages the primary GPT of a disk with 512-byte sectors
// (the backup stays good), or both copies; or leaves a valid table that
// sprout refuses.
type damage struct {
	name  string
	apply func(f *os.File, size int64) error
	// stops: sprout must fail, and the boot must stop by itself with
	// sprout's message (sprout.service(8), FAILURE) instead of reaching
	// the root.
	stops bool
}

var (
	// tornHeader breaks the primary header's CRC: the header sector was
	// being written when the power went.
	tornHeader = damage{"primary GPT header damaged (CRC)", func(f *os.File, _ int64) error {
		return flipBytes(f, 512+16, 2)
	}, false}
	// tornEntries zeroes the second half of the primary entry array's first
	// sector (entries 3 and 4: home and var) under a header whose entry CRC
	// counts them: the header was written, the entries were not.
	tornEntries = damage{"primary entries torn (not matching the header's CRC)", func(f *os.File, _ int64) error {
		_, err := f.WriteAt(make([]byte, 256), 1024+256)
		return err
	}, false}
	// bothDestroyed zeroes both GPT headers: nothing left to repair from.
	bothDestroyed = damage{"both GPT headers destroyed", func(f *os.File, size int64) error {
		if _, err := f.WriteAt(make([]byte, 512), 512); err != nil {
			return err
		}
		_, err := f.WriteAt(make([]byte, 512), size-512)
		return err
	}, true}
	// zeroDiskGUID gives both headers an all-zero disk GUID (their CRCs
	// recomputed): a valid table that the kernel reads, so the root is
	// found, but that sprout refuses (as 252 does) — a sprout failure on
	// an otherwise bootable disk.
	zeroDiskGUID = damage{"disk GUID all zeros (a table sprout refuses)", func(f *os.File, size int64) error {
		for _, off := range []int64{512, size - 512} {
			h := make([]byte, 512)
			if _, err := f.ReadAt(h, off); err != nil {
				return err
			}
			clear(h[56:72])
			n := binary.LittleEndian.Uint32(h[12:])
			if n < 92 || n > 512 {
				return fmt.Errorf("GPT header at %d: size %d", off, n)
			}
			clear(h[16:20])
			binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:n]))
			if _, err := f.WriteAt(h, off); err != nil {
				return err
			}
		}
		return nil
	}, true}
)

// damageDisk applies d to the disk image file.
func damageDisk(disk string, d damage) error {
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	if err := d.apply(f, st.Size()); err != nil {
		f.Close()
		return fmt.Errorf("damaging %s (%s): %w", disk, d.name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func flipBytes(f *os.File, off int64, n int) error {
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		return err
	}
	for i := range b {
		b[i] ^= 0xff
	}
	_, err := f.WriteAt(b, off)
	return err
}

// gptCopyProblem checks one GPT copy of a disk with 512-byte sectors as a
// reader that knows only the UEFI specification would
// (harness.ReadGPTCopy: independent of sprout's reader). It returns "" for
// a valid copy.
func gptCopyProblem(disk string, lba int64) string {
	c, err := harness.ReadGPTCopyFile(disk, 512, uint64(lba))
	if err != nil {
		return err.Error()
	}
	return c.Problem
}

// primaryProblem checks the primary GPT (LBA 1) of a 512-byte-sector disk.
func primaryProblem(disk string) string {
	if p := gptCopyProblem(disk, 1); p != "" {
		return "primary GPT: " + p
	}
	return ""
}
