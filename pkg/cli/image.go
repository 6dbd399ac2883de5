package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/sprout-initrd/sprout/pkg/blockdev"
	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/plan"
	"github.com/sprout-initrd/sprout/pkg/repartd"
	"github.com/sprout-initrd/sprout/pkg/sdvalue"
)

// createImage makes the new image file for --empty=create; like
// systemd-repart it refuses to reuse an existing file.
func createImage(path string, dryRun bool) error {
	if dryRun {
		return errors.New("--empty=create creates the image file, so it cannot be combined with --dry-run=yes")
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return f.Close()
}

// sizeTarget handles --size=: an image file is grown (never shrunk) to
// the given size, or to the minimal size for --size=auto. It only plans:
// snap takes the new size and the size to grow to is returned (0 when the
// file is large enough), so that a refused plan leaves the file as it was.
func (r *run) sizeTarget(session *blockdev.Session, snap *plan.Snapshot, defs []repartd.Definition, v compat.Version) (uint64, error) {
	dev := session.Reader()
	if dev.IsBlockDevice() {
		return 0, fmt.Errorf("--size= works on image files only; %s is a block device", dev.Path())
	}
	var target uint64
	if r.cfg.size == "auto" {
		target = plan.MinimalSize(defs, *snap, v)
		r.logf("Minimal image size is %s; %s is %s.", plan.FormatBytes(target), dev.Path(), plan.FormatBytes(snap.Size))
	} else {
		n, err := sdvalue.ParseSize(r.cfg.size)
		if err != nil {
			return 0, err
		}
		target = (n + 4095) / 4096 * 4096
	}
	if target <= snap.Size {
		r.logf("%s is already %s or larger, not growing it.", dev.Path(), plan.FormatBytes(target))
		return 0, nil
	}
	if r.cfg.dryRun {
		r.logf("Planning as if %s were grown to %s (a dry run does not grow it).", dev.Path(), plan.FormatBytes(target))
	}
	snap.Size = target
	return target, nil
}

// growImage grows the image file once its plan has been accepted, and
// reads the snapshot again through a reopened handle that sees the size.
func (r *run) growImage(session *blockdev.Session, target uint64) (plan.Snapshot, error) {
	path := session.Reader().Path()
	if err := os.Truncate(path, int64(target)); err != nil {
		return plan.Snapshot{}, fmt.Errorf("grow %s: %w", path, err)
	}
	r.logf("Grew %s to %s.", path, plan.FormatBytes(target))
	if err := session.Reopen(); err != nil {
		return plan.Snapshot{}, err
	}
	return plan.ReadSnapshot(session.Reader(), session.Path())
}
