package plan

// Step generation: the ordered steps that carry a layout to the disk.

import (
	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/udevlink"
)

// writeRelocationFirst keeps the relocated old table in the
// RelocateBackup step (to be written on its own, first) only when ranges
// of new partitions are wiped before the new table is written: the old
// backup GPT lies in one of them. Otherwise the relocation is written
// with the new table.
func writeRelocationFirst(steps []Step) {
	if wipesRanges(steps) {
		return
	}
	for i, s := range steps {
		if r, ok := s.(RelocateBackup); ok {
			r.Table = nil
			steps[i] = r
		}
	}
}

// wipesRanges reports whether the steps wipe a new partition's range.
func wipesRanges(steps []Step) bool {
	for _, s := range steps {
		if _, ok := s.(WipeRange); ok {
			return true
		}
	}
	return false
}

// changesPartitions reports whether a partition is added or grown (not
// only the table relocated or repaired).
func changesPartitions(steps []Step) bool {
	for _, s := range steps {
		switch s.(type) {
		case AddEntry, GrowEntry, CreateTable:
			return true
		}
	}
	return false
}

// entryUpdates gives existing partitions the label or UUID they lack (an
// empty name, an all-zero UUID). Like 252 this alone is not a reason to
// write the table; it rides along when partitions change anyway.
func entryUpdates(members []*member, uuids []uuid.UUID, labels []string) []Step {
	var steps []Step
	for i, m := range members {
		if !m.exists || m.foreign() || m.deferred {
			continue
		}
		if m.entry.UUID != uuids[i] || m.entry.Name != labels[i] {
			steps = append(steps, UpdateEntry{Index: m.index, UUID: uuids[i], Name: labels[i]})
		}
	}
	return steps
}

func kernelSteps(rows []Partition) []Step {
	// The kernel is always brought in line with the written table: after a
	// repair it may lack partitions that are not new.
	var tell TellKernel
	for _, r := range rows {
		if r.Deferred {
			continue
		}
		switch r.Activity {
		case Create:
			tell.Add = append(tell.Add, r.Index)
		case Resize:
			tell.Resize = append(tell.Resize, r.Index)
		}
	}
	steps := []Step{WriteTable{}, tell}
	var wait WaitForUdev
	for _, r := range rows {
		if r.Activity == Create && !r.Deferred {
			wait.Partitions = append(wait.Partitions, r.Index)
			wait.Links = append(wait.Links, r.UdevLinks()...)
		}
	}
	if len(wait.Partitions) == 0 {
		// Nothing new, but the table is written all the same (a repair, a
		// resize): udev's watch re-reads it once sprout lets go of the
		// disk, removing and re-adding every partition. Wait for that
		// here, not under the mounts ordered after sprout (measured in
		// the QEMU tier: a repaired primary GPT, then a re-read after
		// "All done.").
		for _, r := range rows {
			if r.Deferred && r.Activity == Create {
				continue
			}
			wait.Partitions = append(wait.Partitions, r.Index)
			wait.Links = append(wait.Links, "/dev/disk/by-partuuid/"+r.UUID.String())
		}
	}
	if len(wait.Partitions) > 0 {
		steps = append(steps, wait)
	}
	return steps
}

// UdevLinks are the /dev/disk links udev makes for the partition.
func (r Partition) UdevLinks() []string {
	var links []string
	if r.Label != "" {
		links = append(links, "/dev/disk/by-partlabel/"+udevlink.Escape(r.Label))
	}
	return append(links, "/dev/disk/by-partuuid/"+r.UUID.String())
}
