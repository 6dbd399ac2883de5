package plan

import (
	"fmt"
	"time"
)

// DiscardPolicy says whether and how the ranges of new partitions (and a
// disk that gets a new table) are discarded: --discard= and
// --discard-budget=.
//
// Discard is an optimisation, never a reason to stall a boot: on an SD
// card the kernel turns it into erase commands, a few MiB each, and
// gigabytes of them did not end within a boot (issue 21). So it runs in
// pieces while a time budget for the whole run lasts, and what is left
// when the budget is spent stays as it is.
type DiscardPolicy struct {
	On bool
	// Budget is the time all of a run's discards may take together; 0
	// means no limit.
	Budget time.Duration
	// Limits are the disk's queue limits, when known (a block device
	// whose limits were read). A device that cannot discard gets no
	// discard steps.
	Limits *DiscardLimits
}

// DiscardLimits are a block device's discard limits, from the kernel's
// request queue (sysfs queue/discard_*).
type DiscardLimits struct {
	// MaxBytes is the most one request may discard (discard_max_bytes);
	// 0 means the device cannot discard at all (USB mass storage, most
	// SD host controllers in SPI mode, disks without TRIM).
	MaxBytes uint64
	// Granularity is the unit the device discards in
	// (discard_granularity, an erase block on flash).
	Granularity uint64
}

// DefaultDiscardBudget is the time a run's discards may take by default:
// a fast SSD or NVMe disk discards hundreds of GiB in that time, while an
// SD card or a USB stick stops early and the first boot goes on.
const DefaultDiscardBudget = 10 * time.Second

// DiscardRange tells the device that a range holds no data (BLKDISCARD on
// a disk, a hole in an image file): a future partition's range without
// the first and last MiB, which WipeRange zeroes, or, before a new table
// is created, the whole disk (Index 0; the new partitions' ranges then
// get none of their own). It runs in pieces while the run's
// discard budget lasts; each DiscardRange of the run gets an equal share
// of what earlier ones left.
type DiscardRange struct {
	Index        int // the future partition's number; 0: the whole disk
	Label        string
	Offset, Size uint64
	// Budget is the run's discard budget (0: no limit).
	Budget time.Duration
}

func (s DiscardRange) Describe() string {
	what := fmt.Sprintf("future partition %d between its first and last MiB (%s at offset %d)", s.Index, FormatBytes(s.Size), s.Offset)
	if s.Index == 0 {
		what = fmt.Sprintf("the whole disk (%s)", FormatBytes(s.Size))
	}
	if s.Budget == 0 {
		return "discard " + what + ", however long it takes (--discard-budget=infinity)"
	}
	return fmt.Sprintf("discard %s in pieces while the run's discard budget of %s lasts (less on a device too slow to be worth it); what is left then stays as it is", what, s.Budget)
}

// What names the range for progress messages.
func (s DiscardRange) What() string {
	if s.Index == 0 {
		return fmt.Sprintf("the whole disk (%s)", FormatBytes(s.Size))
	}
	if s.Label != "" {
		return fmt.Sprintf("partition %d %q (%s)", s.Index, s.Label, FormatBytes(s.Size))
	}
	return fmt.Sprintf("partition %d (%s)", s.Index, FormatBytes(s.Size))
}

// Discards reports whether the plan has discard steps.
func (p *Plan) Discards() bool {
	for _, s := range p.Steps {
		if _, ok := s.(DiscardRange); ok {
			return true
		}
	}
	return false
}

// discardSteps adds a DiscardRange after each WipeRange (the range
// between the zeroed ends), as the policy asks; when a new table is
// created, one for the whole disk before it instead, which covers the new
// partitions too.
func discardSteps(steps []Step, rows []Partition, size uint64, policy DiscardPolicy) []Step {
	if !policy.On || policy.Limits != nil && policy.Limits.MaxBytes == 0 || !wipesRanges(steps) && !createsTable(steps) {
		return steps // (a no-op boot allocates nothing here)
	}
	labels := map[int]string{}
	for _, r := range rows {
		labels[r.Index] = r.Label
	}
	out := make([]Step, 0, len(steps)+len(rows)+1)
	wholeDisk := false
	for _, s := range steps {
		if _, ok := s.(CreateTable); ok {
			out = append(out, DiscardRange{Offset: 0, Size: size, Budget: policy.Budget})
			wholeDisk = true
		}
		out = append(out, s)
		if w, ok := s.(WipeRange); ok && w.Size > 2*WipeSpan && !wholeDisk {
			out = append(out, DiscardRange{Index: w.Index, Label: labels[w.Index],
				Offset: w.Offset + WipeSpan, Size: w.Size - 2*WipeSpan, Budget: policy.Budget})
		}
	}
	return out
}

func createsTable(steps []Step) bool {
	for _, s := range steps {
		if _, ok := s.(CreateTable); ok {
			return true
		}
	}
	return false
}

// WipeSpan is how much of each end of a new partition's range WipeRange
// zeroes to remove old signatures: it covers the superblocks and labels
// that blkid looks for (ext*, xfs, btrfs, vfat, swap, LUKS, LVM, MD, ZFS,
// GPT).
const WipeSpan = 1 << 20
