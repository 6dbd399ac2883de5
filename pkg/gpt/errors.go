package gpt

import "errors"

// Sentinel errors. Read and Validate wrap them with the device position
// (LBA, entry index) that made the decision, so callers use errors.Is.
var (
	// ErrNoLabel: the disk carries no partition table at all — no GPT
	// header at LBA 1 or at the last LBA (for any common sector size) and no
	// 0x55AA boot signature in LBA 0.
	ErrNoLabel = errors.New("no partition table")

	// ErrOtherLabel: LBA 0 holds an MBR (DOS) partition table without a
	// protective 0xEE record, so the disk is not GPT-partitioned.
	ErrOtherLabel = errors.New("not a GPT partition table")

	// ErrCorrupt: a GPT is present, but neither copy can be used safely.
	ErrCorrupt = errors.New("corrupt GPT")

	// ErrInvalid: a Table that cannot be written to a disk of the given
	// size (bounds, overlaps, indices, names).
	ErrInvalid = errors.New("invalid partition table")
)
