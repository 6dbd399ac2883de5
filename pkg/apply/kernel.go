package apply

// Bringing the kernel in line with the table on disk, in one place: after
// a run wrote it (tellKernel), after a factory reset removed partitions,
// and when a no-op run finds the kernel behind an interrupted run
// (CatchUpKernel). What to tell the kernel is decided by
// blockdev.DiffKernel for all of them.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sprout-initrd/sprout/pkg/blockdev"
	"github.com/sprout-initrd/sprout/pkg/gpt"
	"github.com/sprout-initrd/sprout/pkg/plan"
)

// tellKernel brings the kernel's partitions in line with the table: new
// ones are added and grown ones resized with BLKPG; unchanged ones are not
// touched, so their device nodes (and mounts) never go away.
func tellKernel(k blockdev.Kernel, table *gpt.Table, opts Options) error {
	changed, err := blockdev.SyncKernel(k, kernelWant(table))
	if err != nil {
		return fmt.Errorf("the table is written, but the kernel could not follow: %w", err)
	}
	if len(changed) > 0 {
		opts.Log("Told the kernel about partitions %v.", changed)
	}
	return nil
}

// kernelWant is the kernel's view a table asks for.
func kernelWant(table *gpt.Table) []blockdev.WantPartition {
	ss := int64(table.SectorSize)
	var want []blockdev.WantPartition
	for _, e := range table.Entries {
		want = append(want, blockdev.WantPartition{Number: e.Index, Start: int64(e.FirstLBA) * ss, Size: int64(e.Sectors()) * ss})
	}
	return want
}

// CatchUpKernel tells the kernel about partitions of p's table that it
// lacks or knows smaller, without writing to the disk, and waits for the
// udev links of those it added: a run interrupted after the table write
// but before telling the kernel, in the same boot, would otherwise leave
// them invisible until a reboot. It never removes or moves a kernel
// partition. For an image file it does nothing.
func CatchUpKernel(ctx context.Context, d Disk, p *plan.Plan, log func(string, ...any)) error {
	k := d.Kernel()
	if k.Identity().DevNum == "" {
		return nil
	}
	kernel, err := k.Partitions()
	if err != nil {
		return err
	}
	known := map[int]bool{}
	for _, kp := range kernel {
		known[kp.Number] = true
	}
	want := kernelWant(p.New)
	grows := blockdev.DiffKernel(kernel, want).Grow
	var errs []error
	var added []int
	for _, w := range want {
		switch {
		case !known[w.Number]:
			log("The kernel does not know partition %d yet; adding it.", w.Number)
			if err := k.AddPartition(w.Number, w.Start, w.Size); err != nil {
				errs = append(errs, err)
			} else {
				added = append(added, w.Number)
			}
		case slices.Contains(grows, w.Number):
			log("The kernel knows partition %d smaller than the table; resizing it.", w.Number)
			errs = append(errs, k.ResizePartition(w.Number, w.Start, w.Size))
		}
		// A partition the kernel has at another start is left alone:
		// only a run that writes may delete it.
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if len(added) == 0 {
		return nil
	}
	var links []string
	for _, row := range p.Partitions {
		if slices.Contains(added, row.Index) {
			links = append(links, row.UdevLinks()...)
		}
	}
	log("Waiting for the new partitions' devices (udev links when udev runs).")
	return d.SettleUdev(ctx, links, 30*time.Second)
}
