package apply

import (
	"fmt"

	"github.com/sprout-initrd/sprout/pkg/blockdev"
	"github.com/sprout-initrd/sprout/pkg/plan"
)

// factoryReset carries out a plan.FactoryReset step: the table without
// the erased partitions is written (backup copy first, each write
// synced) before any of their bytes is touched, and the kernel forgets
// them, so no device node points at a range that is being wiped. Their
// ranges are then wiped, formatted and added back by the plan's ordinary
// steps.
func factoryReset(t blockdev.Device, k blockdev.Kernel, s plan.FactoryReset, opts Options) error {
	for _, e := range s.Erase {
		opts.Log("Factory reset: removing partition %d %q (%s) from the table.", e.Index, e.Label, e.File)
	}
	if err := writeTable(t, s.Table, opts); err != nil {
		return fmt.Errorf("factory reset: %w", err)
	}
	if _, err := blockdev.SyncKernel(k, kernelWant(s.Table)); err != nil {
		return fmt.Errorf("factory reset: the table without the erased partitions is written, but the kernel could not follow: %w", err)
	}
	opts.Log("Factory reset: %d partition(s) removed; creating them anew.", len(s.Erase))
	if opts.AfterFactoryReset != nil {
		if err := opts.AfterFactoryReset(); err != nil {
			return fmt.Errorf("factory reset: %w", err)
		}
	}
	return nil
}
