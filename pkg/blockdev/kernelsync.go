package blockdev

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// WantPartition is a partition the kernel should know about. Start and Size
// are in bytes.
type WantPartition struct {
	Number      int
	Start, Size int64
}

// KernelChanges is what it takes to make the kernel's partitions of a
// disk equal a table, in the order BLKPG must be told: deletes (not in
// the table, or moved), then resizes of same-start partitions (shrinks
// before grows, so that a grow never overlaps a not-yet-shrunk
// neighbour), then adds (new, or moved). Partitions that already match
// are in none of the lists. Each list is sorted.
type KernelChanges struct {
	Delete, Shrink, Grow, Add []int
}

// DiffKernel compares the kernel's partitions with want, the complete
// table. It is the one place that decides which kernel partitions stay,
// for SyncKernel, for the catch-up of an interrupted run, and for the
// check before a run that a partition in use would not have to move.
func DiffKernel(current []KernelPartition, want []WantPartition) KernelChanges {
	wanted := make(map[int]WantPartition, len(want))
	for _, w := range want {
		wanted[w.Number] = w
	}
	have := make(map[int]KernelPartition, len(current))
	for _, p := range current {
		have[p.Number] = p
	}
	var c KernelChanges
	for _, p := range current {
		w, ok := wanted[p.Number]
		if !ok || w.Start != p.Start {
			c.Delete = append(c.Delete, p.Number)
		}
	}
	for _, w := range want {
		p, ok := have[w.Number]
		switch {
		case !ok || p.Start != w.Start:
			c.Add = append(c.Add, w.Number)
		case w.Size < p.Size:
			c.Shrink = append(c.Shrink, w.Number)
		case w.Size > p.Size:
			c.Grow = append(c.Grow, w.Number)
		}
	}
	for _, l := range [][]int{c.Delete, c.Shrink, c.Grow, c.Add} {
		sort.Ints(l)
	}
	return c
}

// SyncKernel makes the kernel's partitions of a disk equal want, which must
// be the complete partition table, without disturbing partitions that
// already match: those are never removed and re-added (that would unmount
// nothing but would send remove/add uevents and drop udev links under
// systemd's feet). Like systemd-repart (v259+) and libfdisk it issues the
// BLKPG calls of DiffKernel in its order. BLKRRPART is never used: it
// fails as soon as any partition is mounted.
//
// changed lists the partition numbers the kernel was told about, sorted.
// A refusal names the partition and wraps the kernel's errno, so
// errors.Is(err, unix.EBUSY) works. Afterwards the kernel's view is read
// again and any difference from want is an error naming the partition.
// A no-op for regular files.
func SyncKernel(k Kernel, want []WantPartition) (changed []int, err error) {
	id := k.Identity()
	if id.DevNum == "" {
		return nil, nil
	}
	// Refuse a bad table before telling the kernel anything.
	wanted := make(map[int]WantPartition, len(want))
	ss := int64(k.SectorSize())
	for _, w := range want {
		if _, dup := wanted[w.Number]; dup {
			return nil, fmt.Errorf("sync kernel partitions of %s: partition %d listed twice", id.Path, w.Number)
		}
		if w.Number < 1 || w.Start < 0 || w.Size <= 0 || w.Start%ss != 0 || w.Size%ss != 0 {
			return nil, fmt.Errorf("sync kernel partitions of %s: partition %d (start %d, size %d): want a number from 1 and positive multiples of the %d-byte sector size",
				id.Path, w.Number, w.Start, w.Size, ss)
		}
		wanted[w.Number] = w
	}
	current, err := k.Partitions()
	if err != nil {
		return nil, err
	}
	c := DiffKernel(current, want)
	touched := func(n int) {
		if !slices.Contains(changed, n) {
			changed = append(changed, n)
			slices.Sort(changed)
		}
	}
	for _, n := range c.Delete {
		if err := k.DeletePartition(n); err != nil {
			return changed, err
		}
		touched(n)
	}
	for _, n := range slices.Concat(c.Shrink, c.Grow) {
		if err := k.ResizePartition(n, wanted[n].Start, wanted[n].Size); err != nil {
			return changed, err
		}
		touched(n)
	}
	for _, n := range c.Add {
		if err := k.AddPartition(n, wanted[n].Start, wanted[n].Size); err != nil {
			return changed, err
		}
		touched(n)
	}
	return changed, verifyKernel(k, want)
}

// verifyKernel re-reads the kernel's view and reports the first difference
// from want.
func verifyKernel(k Kernel, want []WantPartition) error {
	current, err := k.Partitions()
	if err != nil {
		return err
	}
	have := make(map[int]KernelPartition, len(current))
	for _, p := range current {
		have[p.Number] = p
	}
	var problems []string
	for _, w := range want {
		p, ok := have[w.Number]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("partition %d: expected start %d size %d, kernel has none", w.Number, w.Start, w.Size))
		case p.Start != w.Start || p.Size != w.Size:
			problems = append(problems, fmt.Sprintf("partition %d: expected start %d size %d, kernel has start %d size %d", w.Number, w.Start, w.Size, p.Start, p.Size))
		}
		delete(have, w.Number)
	}
	for _, p := range current {
		if _, extra := have[p.Number]; extra {
			problems = append(problems, fmt.Sprintf("partition %d: not in the table, kernel has start %d size %d", p.Number, p.Start, p.Size))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("kernel's view of %s differs from the partition table after sync: %s", k.Identity().Path, strings.Join(problems, "; "))
	}
	return nil
}
