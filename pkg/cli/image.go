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

// applySize handles --size=: an image file is grown (never shrunk) to the
// given size, or to the minimal size for --size=auto. A dry run changes
// nothing and plans as if the file had been grown.
func (r *run) applySize(session *blockdev.Session, snap *plan.Snapshot, defs []repartd.Definition, v compat.Version) error {
	dev := session.Reader()
	if dev.IsBlockDevice() {
		return fmt.Errorf("--size= works on image files only; %s is a block device", dev.Path())
	}
	var target uint64
	if r.cfg.size == "auto" {
		target = plan.MinimalSize(defs, *snap, v)
		r.logf("Minimal image size is %s; %s is %s.", plan.FormatBytes(target), dev.Path(), plan.FormatBytes(snap.Size))
	} else {
		n, err := sdvalue.ParseSize(r.cfg.size)
		if err != nil {
			return err
		}
		target = (n + 4095) / 4096 * 4096
	}
	if target <= snap.Size {
		r.logf("%s is already %s or larger, not growing it.", dev.Path(), plan.FormatBytes(target))
		return nil
	}
	if r.cfg.dryRun {
		r.logf("Planning as if %s were grown to %s (a dry run does not grow it).", dev.Path(), plan.FormatBytes(target))
		snap.Size = target
		return nil
	}
	if err := os.Truncate(dev.Path(), int64(target)); err != nil {
		return fmt.Errorf("grow %s: %w", dev.Path(), err)
	}
	r.logf("Grew %s to %s.", dev.Path(), plan.FormatBytes(target))
	// Reopen so the handle and the snapshot see the new size.
	if err := session.Reopen(); err != nil {
		return err
	}
	s, err := plan.ReadSnapshot(session.Reader(), session.Path())
	*snap = s
	return err
}
