package apply

// The in-use policy: before the first write, a run is refused if it
// would disturb a partition that is in use.

import (
	"fmt"
	"slices"

	"github.com/sprout-initrd/sprout/pkg/blockdev"
	"github.com/sprout-initrd/sprout/pkg/gpt"
	"github.com/sprout-initrd/sprout/pkg/plan"
)

// preflight checks, before the first write, that the kernel will be able
// to follow the new table without disturbing a partition in use: a
// partition the kernel knows at another place (or not at all in the new
// table) must not be in use, and no kernel partition may overlap a new or
// grown range. It only reads: it does not try a BLKPG resize as a probe
// (every kernel that runs systemd 252, ≥ 3.15, resizes a partition in use
// in place; BLKPG_RESIZE_PARTITION exists since 3.6).
func preflight(kv blockdev.Kernel, p *plan.Plan) error {
	kernel, err := kv.Partitions()
	if err != nil || len(kernel) == 0 {
		return err
	}
	ss := int64(p.SectorSize)
	want := map[int]gpt.Entry{}
	for _, e := range p.New.Entries {
		want[e.Index] = e
	}
	// The kernel partitions SyncKernel will delete must not be in use;
	// the others stay.
	moves := blockdev.DiffKernel(kernel, kernelWant(p.New)).Delete
	stays := map[int]bool{}
	for _, k := range kernel {
		if !slices.Contains(moves, k.Number) {
			stays[k.Number] = true
			continue
		}
		busy, err := kv.PartitionInUse(k.Number)
		if err != nil {
			return err
		}
		if busy {
			return fmt.Errorf("partition %d (%s) is in use, and the new table has it at another place or not at all", k.Number, k.Node)
		}
	}
	for _, s := range p.Steps {
		var n int
		switch s := s.(type) {
		case plan.AddEntry:
			n = s.Entry.Index
		case plan.GrowEntry:
			n = s.Index
		default:
			continue
		}
		_, isNew := s.(plan.AddEntry)
		w := want[n]
		start, end := int64(w.FirstLBA)*ss, int64(w.LastLBA+1)*ss
		for _, k := range kernel {
			if k.Start >= end || start >= k.Start+k.Size {
				continue
			}
			if k.Number != n && stays[k.Number] {
				return fmt.Errorf("the kernel has partition %d at bytes %d–%d, overlapping partition %d (bytes %d–%d) of the new table", k.Number, k.Start, k.Start+k.Size, n, start, end)
			}
			// A new partition's range is wiped and formatted, so nothing
			// the kernel has there may be in use — not even a stale
			// partition with the same number and start.
			if !isNew {
				continue
			}
			busy, err := kv.PartitionInUse(k.Number)
			if err != nil {
				return err
			}
			if busy {
				return fmt.Errorf("partition %d (%s) is in use at bytes %d–%d, where new partition %d (bytes %d–%d) would be wiped and formatted", k.Number, k.Node, k.Start, k.Start+k.Size, n, start, end)
			}
		}
	}
	return nil
}

// preflightReset refuses, before the first write, to erase a partition
// that is in use (mounted, swapped on, held by another device).
func preflightReset(kv blockdev.Kernel, p *plan.Plan) error {
	for _, s := range p.Steps {
		r, ok := s.(plan.FactoryReset)
		if !ok {
			continue
		}
		kernel, err := kv.Partitions()
		if err != nil {
			return err
		}
		for _, e := range r.Erase {
			for _, k := range kernel {
				if k.Number != e.Index {
					continue
				}
				busy, err := kv.PartitionInUse(k.Number)
				if err != nil {
					return err
				}
				if busy {
					return fmt.Errorf("partition %d (%s, %q) is in use; a factory reset would erase it", k.Number, k.Node, e.Label)
				}
			}
		}
	}
	return nil
}
