//go:build qemu

package qemu

import (
	"fmt"
	"os"

	"github.com/sprout-initrd/sprout/pkg/gpt"
)

// tearPrimaryGPT damages the primary GPT header of a disk image the way a
// power cut inside sprout's write of it leaves it: the header's CRC32 no
// longer matches (one byte flipped), the backup GPT stays valid. Linux
// (without the gpt parameter) then shows no partitions on the disk.
func tearPrimaryGPT(disk string, sectorSize int) error {
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, 1)
	off := int64(sectorSize) + 16 // the header CRC32, at byte 16 of LBA 1
	if _, err := f.ReadAt(b, off); err != nil {
		return fmt.Errorf("tear the primary GPT of %s: %w", disk, err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		return fmt.Errorf("tear the primary GPT of %s: %w", disk, err)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if problem, err := gptProblems(disk, sectorSize); err != nil || problem.primary == "" {
		return fmt.Errorf("tear the primary GPT of %s: it still reads as valid (err %v)", disk, err)
	}
	return nil
}

// gptState is what sprout's own GPT reader says is wrong with each copy
// ("" when nothing).
type gptState struct{ primary, backup string }

// gptProblems reads a disk image's GPT with sprout's reader.
func gptProblems(disk string, sectorSize int) (gptState, error) {
	f, err := os.Open(disk)
	if err != nil {
		return gptState{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return gptState{}, err
	}
	t, err := gpt.Read(f, st.Size(), sectorSize)
	if err != nil {
		return gptState{}, fmt.Errorf("read the GPT of %s: %w", disk, err)
	}
	return gptState{primary: t.PrimaryInvalid, backup: t.BackupInvalid}, nil
}
