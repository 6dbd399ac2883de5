// Package apply executes a plan on a disk or image file.
//
// The order is what makes a run crash-safe (docs/safety.md): every new
// partition's range is wiped, discarded and formatted while no table entry
// points at it; only then is the table written, backup copy first, with a
// sync before the primary copy is touched; only then is the kernel told.
// A crash before the table write leaves the old table (the next run redoes
// the work); a crash during it leaves one valid copy, old or new.
package apply

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/sprout-initrd/sprout/pkg/disk"
	"github.com/sprout-initrd/sprout/pkg/gpt"
	"github.com/sprout-initrd/sprout/pkg/loopdev"
	"github.com/sprout-initrd/sprout/pkg/mkfs"
	"github.com/sprout-initrd/sprout/pkg/plan"
)

// Target is the disk being changed, as apply needs it.
type Target interface {
	disk.Device
}

// Options tune a run.
type Options struct {
	// Discard discards the ranges of new partitions before formatting.
	Discard bool
	// Parallel is how many file systems are made at once (default 2).
	Parallel int
	// UdevTimeout bounds the wait for udev's links (default 30 s).
	UdevTimeout time.Duration
	// Log receives one line per action. Formatting runs concurrently, so
	// it must be safe for concurrent use.
	Log func(format string, args ...any)
	// Release is called once the table is written and the kernel told, just
	// before waiting for udev: it must close the device (and so release its
	// lock), because udev holds back events of a locked disk.
	Release func() error
	// Runner runs mkfs command lines; nil means mkfs.Run.
	Runner func(ctx context.Context, args []string) error
	// AfterFactoryReset is called once the table without the erased
	// partitions is written (to remove the EFI variable that asked).
	AfterFactoryReset func() error
	// KeyDir receives LUKS2 key files while a volume is made (encrypt.go);
	// "" means /run when it exists, else the system's temporary directory.
	KeyDir string

	encrypts map[uint64]plan.EncryptPartition // by the range's offset
}

// wipeSpan is how much of each end of a new partition's range is zeroed
// to remove old signatures: it covers the superblocks and labels that
// blkid looks for (ext*, xfs, btrfs, vfat, swap, LUKS, LVM, MD, ZFS, GPT).
const wipeSpan = 1 << 20

// Run executes p's steps on t, which must be open for writing.
func Run(ctx context.Context, t Target, p *plan.Plan, opts Options) error {
	if opts.Log == nil {
		opts.Log = func(string, ...any) {}
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 2
	}
	if opts.UdevTimeout <= 0 {
		opts.UdevTimeout = 30 * time.Second
	}
	if opts.Runner == nil {
		opts.Runner = mkfs.Run
	}
	if uint64(t.Size()) != p.DiskSize || t.SectorSize() != p.SectorSize {
		return fmt.Errorf("%s changed since it was planned for (%d bytes, %d-byte sectors now)", t.Path(), t.Size(), t.SectorSize())
	}

	if err := preflightReset(t, p); err != nil {
		return fmt.Errorf("refusing to change %s (nothing was written): %w", t.Path(), err)
	}
	if err := preflight(t, p); err != nil {
		return fmt.Errorf("refusing to change %s (nothing was written): %w", t.Path(), err)
	}

	var formats []plan.FormatPartition
	opts.encrypts = map[uint64]plan.EncryptPartition{}
	for _, s := range p.Steps {
		switch s := s.(type) {
		case plan.FormatPartition:
			formats = append(formats, s)
		case plan.EncryptPartition:
			opts.encrypts[s.Offset] = s
		}
	}
	for _, s := range p.Steps {
		switch s := s.(type) {
		case plan.CreateTable:
			if err := wipeForNewTable(t, p, opts); err != nil {
				return err
			}
		case plan.RelocateBackup:
			if s.Table != nil {
				opts.Log("Moving the backup GPT of %s to the end of the disk.", t.Path())
				if err := writeTable(t, s.Table, opts); err != nil {
					return err
				}
			}
		case plan.FactoryReset:
			if err := factoryReset(t, s, opts); err != nil {
				return err
			}
		case plan.WipeRange:
			if err := wipeRange(t, int64(s.Offset), int64(s.Size), opts); err != nil {
				return fmt.Errorf("future partition %d: %w", s.Index, err)
			}
			if err := t.Sync(); err != nil {
				return err
			}
		case plan.EncryptPartition, plan.FormatPartition:
			// All new partitions are formatted together, at the first one
			// (an encrypted one is formatted inside its volume, encrypt.go).
			if len(formats) > 0 {
				if err := formatAll(ctx, t, formats, opts); err != nil {
					return err
				}
				formats = nil
			}
		case plan.WriteTable:
			if err := writeTable(t, p.New, opts); err != nil {
				return err
			}
		case plan.TellKernel:
			if err := tellKernel(t, p.New, opts); err != nil {
				return err
			}
		case plan.WaitForUdev:
			if opts.Release != nil {
				if err := opts.Release(); err != nil {
					return err
				}
			}
			if t.IsBlockDevice() {
				opts.Log("Waiting for the new partitions' devices (udev links when udev runs).")
				if err := disk.WaitForUdev(ctx, t, s.Links, opts.UdevTimeout); err != nil {
					return err
				}
			}
		case plan.RepairTable:
			// The repair itself happens with WriteTable; say why the table
			// is written, and what was wrong, before anything is.
			opts.Log("Repairing the partition table of %s: %s.", t.Path(), s.Reason)
		default:
			// Table edits (grow, add, update) are in p.New
			// already and reach the disk with WriteTable.
		}
	}
	return nil
}

// wipeForNewTable clears what an old label left outside the usable area
// (both GPT copies, an MBR) before a table is created from scratch, and
// discards the disk when allowed.
func wipeForNewTable(t Target, p *plan.Plan, opts Options) error {
	if opts.Discard {
		if err := t.Discard(0, t.Size()); err != nil && !errors.Is(err, disk.ErrDiscardUnsupported) {
			return fmt.Errorf("discard %s: %w", t.Path(), err)
		}
	}
	ss := int64(p.SectorSize)
	head := int64(p.New.FirstUsableLBA) * ss
	tail := int64(p.New.LastUsableLBA+1) * ss
	opts.Log("Wiping old partition table signatures of %s.", t.Path())
	if err := zero(t, 0, head); err != nil {
		return err
	}
	if err := zero(t, tail, t.Size()-tail); err != nil {
		return err
	}
	return t.Sync()
}

// formatAll prepares and formats the new partitions, several at a time;
// they are independent byte ranges. Any failure stops the run before the
// table is written.
func formatAll(ctx context.Context, t Target, fs []plan.FormatPartition, opts Options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, opts.Parallel)
	errs := make([]error, len(fs))
	var wg sync.WaitGroup
	for i, f := range fs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if ctx.Err() != nil {
				errs[i] = ctx.Err()
				return
			}
			if errs[i] = formatOne(ctx, t, f, opts); errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return t.Sync()
}

func formatOne(ctx context.Context, t Target, f plan.FormatPartition, opts Options) error {
	off, size := int64(f.Offset), int64(f.Size)
	opts.Log("Formatting future partition %d as %s.", f.Index, f.Format)
	req := mkfs.Request{Format: f.Format, Label: f.Label, UUID: f.UUID, Discard: opts.Discard}
	make := makeFileSystem
	if f.Encrypted {
		make = makeEncrypted
	}
	if err := make(ctx, t, off, size, req, opts); err != nil {
		return fmt.Errorf("future partition %d: %w", f.Index, err)
	}
	opts.Log("Formatted future partition %d (%s, label %q, UUID %s).", f.Index, f.Format, f.Label, f.UUID)
	return nil
}

// wipeRange zeroes both ends of a new partition's range (old file
// system and RAID signatures live there) and discards it if allowed.
func wipeRange(t Target, off, size int64, opts Options) error {
	head := min(size, wipeSpan)
	if err := zero(t, off, head); err != nil {
		return err
	}
	if tail := min(size-head, wipeSpan); tail > 0 {
		if err := zero(t, off+size-tail, tail); err != nil {
			return err
		}
	}
	if opts.Discard && size > 2*wipeSpan {
		err := t.Discard(off+wipeSpan, size-2*wipeSpan)
		if err != nil && !errors.Is(err, disk.ErrDiscardUnsupported) {
			return err
		}
	}
	return nil
}

func makeFileSystem(ctx context.Context, t Target, off, size int64, req mkfs.Request, opts Options) error {
	if req.Format == "swap" {
		return mkfs.WriteSwap(t, off, size, os.Getpagesize(), req.Label, req.UUID)
	}
	// An image file can be formatted in place by the tools that take an
	// offset; that needs no loop device (and no root).
	if !t.IsBlockDevice() {
		if args, ok := mkfs.OffsetArgs(req, t.Path(), off, size); ok {
			if err := t.Sync(); err != nil {
				return err
			}
			return opts.Runner(ctx, args)
		}
	}
	if err := t.Sync(); err != nil {
		return err
	}
	loop, err := loopdev.Attach(t.Path(), off, size, t.SectorSize())
	if err != nil {
		return err
	}
	args, err := mkfs.Args(req, loop.Path())
	if err == nil {
		err = opts.Runner(ctx, args)
	}
	if err == nil {
		err = loop.Sync()
	}
	if derr := loop.Detach(); err == nil {
		err = derr
	}
	return err
}

// writeTable stores the table in crash-safe order — backup entries,
// backup header, primary entries, primary header, protective MBR — with a
// sync after each write, so no write is reordered before an earlier one.
// A crash at any point leaves at least one valid copy, old or new.
func writeTable(t Target, table *gpt.Table, opts Options) error {
	writes, err := table.Encode(t.Size())
	if err != nil {
		return fmt.Errorf("encode partition table: %w", err)
	}
	opts.Log("Writing the partition table of %s.", t.Path())
	for _, w := range writes {
		if _, err := t.WriteAt(w.Data, w.Offset); err != nil {
			return fmt.Errorf("write %s at offset %d: %w", w.What, w.Offset, err)
		}
		if err := t.Sync(); err != nil {
			return fmt.Errorf("sync after %s: %w", w.What, err)
		}
	}
	return nil
}

// tellKernel brings the kernel's partitions in line with the table: new
// ones are added and grown ones resized with BLKPG; unchanged ones are not
// touched, so their device nodes (and mounts) never go away.
func tellKernel(t Target, table *gpt.Table, opts Options) error {
	if !t.IsBlockDevice() {
		return nil
	}
	ss := int64(table.SectorSize)
	var want []disk.WantPartition
	for _, e := range table.Entries {
		want = append(want, disk.WantPartition{Number: e.Index, Start: int64(e.FirstLBA) * ss, Size: int64(e.Sectors()) * ss})
	}
	changed, err := disk.SyncKernel(t, want)
	if err != nil {
		return fmt.Errorf("the table is written, but the kernel could not follow: %w", err)
	}
	if len(changed) > 0 {
		opts.Log("Told the kernel about partitions %v.", changed)
	}
	return nil
}

// preflight checks, before the first write, that the kernel will be able
// to follow the new table without disturbing a partition in use: a
// partition the kernel knows at another place (or not at all in the new
// table) must not be in use, and no kernel partition may overlap a new or
// grown range. It only reads: it does not try a BLKPG resize as a probe
// (every kernel that runs systemd 252, ≥ 3.15, resizes a partition in use
// in place; BLKPG_RESIZE_PARTITION exists since 3.6).
func preflight(t Target, p *plan.Plan) error {
	if !t.IsBlockDevice() {
		return nil
	}
	kernel, err := disk.KernelPartitions(t)
	if err != nil {
		return err
	}
	ss := int64(p.SectorSize)
	want := map[int]gpt.Entry{}
	for _, e := range p.New.Entries {
		want[e.Index] = e
	}
	stays := map[int]bool{} // kernel partitions SyncKernel keeps
	for _, k := range kernel {
		w, ok := want[k.Number]
		if ok && int64(w.FirstLBA)*ss == k.Start {
			stays[k.Number] = true
			continue
		}
		busy, err := disk.PartitionInUse(t, k.Number)
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
			busy, err := disk.PartitionInUse(t, k.Number)
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

// CatchUpKernel tells the kernel about partitions of table that it lacks
// or knows smaller, without writing to the disk: a run interrupted after
// the table write but before telling the kernel, in the same boot, would
// otherwise leave them invisible until a reboot. It never removes a
// kernel partition. It returns the partitions added, whose udev links the
// caller waits for.
func CatchUpKernel(dev disk.Device, table *gpt.Table, log func(string, ...any)) (added []int, err error) {
	if !dev.IsBlockDevice() {
		return nil, nil
	}
	kernel, err := disk.KernelPartitions(dev)
	if err != nil {
		return nil, err
	}
	have := map[int]disk.KernelPartition{}
	for _, k := range kernel {
		have[k.Number] = k
	}
	ss := int64(table.SectorSize)
	var errs []error
	for _, e := range table.Entries {
		start, size := int64(e.FirstLBA)*ss, int64(e.Sectors())*ss
		k, ok := have[e.Index]
		switch {
		case !ok:
			log("The kernel does not know partition %d yet; adding it.", e.Index)
			if err := disk.AddPartition(dev, e.Index, start, size); err != nil {
				errs = append(errs, err)
			} else {
				added = append(added, e.Index)
			}
		case k.Start == start && k.Size < size:
			log("The kernel knows partition %d smaller than the table; resizing it.", e.Index)
			errs = append(errs, disk.ResizePartition(dev, e.Index, start, size))
		}
	}
	return added, errors.Join(errs...)
}

// zero makes [off, off+n) of t read as zeros: with the device's
// ZeroRange when it has one (a hole in an image file, BLKZEROOUT on a
// disk: nothing to write, and an image stays sparse), else, or if that
// fails, by writing zeros.
func zero(t Target, off, n int64) error {
	if t.ZeroRange(off, n) == nil {
		return nil
	}
	const chunk = 1 << 20
	buf := make([]byte, min(n, chunk))
	for n > 0 {
		k := min(n, chunk)
		if _, err := t.WriteAt(buf[:k], off); err != nil {
			return fmt.Errorf("zero %s at offset %d: %w", t.Path(), off, err)
		}
		off += k
		n -= k
	}
	return nil
}
