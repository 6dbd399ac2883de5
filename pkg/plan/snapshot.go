package plan

import (
	"errors"
	"fmt"

	"github.com/sprout-initrd/sprout/pkg/gpt"
)

// Disk is what a snapshot is read from: the disk's bytes and geometry.
type Disk interface {
	ReadAt(p []byte, off int64) (int, error)
	Size() int64
	SectorSize() int
}

// ReadSnapshot reads what the planner needs from a disk; name is used in
// errors.
func ReadSnapshot(d Disk, name string) (Snapshot, error) {
	snap := Snapshot{Size: uint64(d.Size()), SectorSize: d.SectorSize()}
	if b, ok := d.(interface{ IsBlockDevice() bool }); ok {
		snap.ImageFile = !b.IsBlockDevice()
	}
	t, err := gpt.Read(d, d.Size(), d.SectorSize())
	switch {
	case err == nil:
		snap.Label, snap.Table = LabelGPT, t
	case errors.Is(err, gpt.ErrNoLabel):
		snap.Label = LabelNone
	case errors.Is(err, gpt.ErrOtherLabel):
		snap.Label, snap.OtherLabel = LabelOther, "DOS/MBR"
	default:
		return snap, fmt.Errorf("%s: %w", name, err)
	}
	return snap, nil
}
