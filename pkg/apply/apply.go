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
	"sync"
	"time"

	"github.com/sprout-initrd/sprout/pkg/blockdev"
	"github.com/sprout-initrd/sprout/pkg/fstype"
	"github.com/sprout-initrd/sprout/pkg/gpt"
	"github.com/sprout-initrd/sprout/pkg/mkfs"
	"github.com/sprout-initrd/sprout/pkg/plan"
)

// Disk is the disk or image a run changes: blockdev.Session in
// production. The writable handle, the kernel's view and the lock's end
// are explicit, so the lock's life stays with whoever opened the disk.
type Disk interface {
	// Writer is the handle the run writes through.
	Writer() (blockdev.Device, error)
	// Kernel is the kernel's view of the disk's partitions.
	Kernel() blockdev.Kernel
	// SettleUdev releases the disk (closes its handles, so its lock) and
	// waits until udev has caught up with the kernel: udev holds back the
	// events of a locked disk. For an image file it only releases.
	SettleUdev(ctx context.Context, links []string, timeout time.Duration) error
}

var _ Disk = (*blockdev.Session)(nil)

// Options tune a run.
type Options struct {
	// DiscardLimits are the disk's discard limits, when known; the
	// plan's DiscardRange steps say what to discard (discard.go).
	DiscardLimits *plan.DiscardLimits
	// Progress is told about steps while they run (progress.go); nil
	// means nobody is told.
	Progress *Progress
	// Now is the clock of discard's time budget; nil means time.Now.
	Now func() time.Time
	// Parallel is how many file systems are made at once (default 2).
	Parallel int
	// UdevTimeout bounds the wait for udev's links (default 30 s).
	UdevTimeout time.Duration
	// Log receives one line per action. Formatting runs concurrently, so
	// it must be safe for concurrent use.
	Log func(format string, args ...any)
	// Runner runs mkfs, cryptsetup and systemd-cryptenroll command lines;
	// nil means mkfs.Run.
	Runner mkfs.Runner
	// AfterFactoryReset is called once the table without the erased
	// partitions is written (to remove the EFI variable that asked).
	AfterFactoryReset func() error
	// KeyDir receives LUKS2 key files while a volume is made (encrypt.go);
	// "" means /run when it exists, else the system's temporary directory.
	KeyDir string
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Run executes p's steps on d.
func Run(ctx context.Context, d Disk, p *plan.Plan, opts Options) error {
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
	t, err := d.Writer()
	if err != nil {
		return &Refusal{err}
	}
	k := d.Kernel()
	opts.Log("Applying changes to %s.", t.Path())
	if uint64(t.Size()) != p.DiskSize || t.SectorSize() != p.SectorSize {
		return &Refusal{fmt.Errorf("%s changed since it was planned for (%d bytes, %d-byte sectors now)", t.Path(), t.Size(), t.SectorSize())}
	}

	if err := preflightReset(k, p); err != nil {
		return &Refusal{fmt.Errorf("refusing to change %s (nothing was written): %w", t.Path(), err)}
	}
	if err := preflight(k, p); err != nil {
		return &Refusal{fmt.Errorf("refusing to change %s (nothing was written): %w", t.Path(), err)}
	}

	formats, err := formatJobs(p.Steps)
	if err != nil {
		return &Refusal{fmt.Errorf("refusing to change %s (nothing was written): %w", t.Path(), err)}
	}
	discard := newDiscarder(p, opts.DiscardLimits, t.SectorSize())
	stop := opts.Progress.watch()
	defer stop()
	for _, s := range p.Steps {
		task := opts.Progress.Start(taskOf(s, t.Path()), 0)
		switch s := s.(type) {
		case plan.CreateTable:
			if err := wipeForNewTable(t, p, opts); err != nil {
				return err
			}
		case plan.DiscardRange:
			if err := discard.discard(ctx, t, s, opts); err != nil {
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
			if err := factoryReset(t, k, s, opts); err != nil {
				return err
			}
		case plan.WipeRange:
			if err := wipeRange(t, int64(s.Offset), int64(s.Size)); err != nil {
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
			if err := tellKernel(k, p.New, opts); err != nil {
				return err
			}
		case plan.WaitForUdev:
			if t.IsBlockDevice() {
				opts.Log("Waiting for the new partitions' devices (udev links when udev runs).")
			}
			if err := d.SettleUdev(ctx, s.Links, opts.UdevTimeout); err != nil {
				return err
			}
		case plan.RepairTable:
			// The repair itself happens with WriteTable; say why the table
			// is written, and what was wrong, before anything is.
			opts.Log("Repairing the partition table of %s: %s.", t.Path(), s.Reason)
		case plan.GrowEntry, plan.AddEntry, plan.UpdateEntry:
			// Table edits are in p.New already and reach the disk with
			// WriteTable.
		default:
			// formatJobs refused it before the first write.
			return fmt.Errorf("internal error: step %T reached the executor", s)
		}
		task.End()
	}
	return nil
}

// taskOf names a step for progress messages: "" for the steps that
// report themselves (discard and formatting, per partition) and for the
// table edits, which take no time.
func taskOf(s plan.Step, disk string) string {
	switch s := s.(type) {
	case plan.CreateTable:
		return "Wiping old partition table signatures of " + disk
	case plan.RelocateBackup:
		if s.Table != nil {
			return "Moving the backup GPT of " + disk + " to the end of the disk"
		}
	case plan.FactoryReset:
		return "Erasing the factory-reset partitions of " + disk
	case plan.WipeRange:
		return fmt.Sprintf("Wiping old signatures from future partition %d", s.Index)
	case plan.WriteTable:
		return "Writing the partition table of " + disk
	case plan.TellKernel:
		return "Telling the kernel about the partitions of " + disk
	case plan.WaitForUdev:
		return "Waiting for udev to make the new partitions' devices"
	}
	return ""
}

// formatJob is one new file system: its FormatPartition step, and the
// EncryptPartition step of the same partition when it is made inside a
// LUKS2 volume.
type formatJob struct {
	format  plan.FormatPartition
	encrypt *plan.EncryptPartition
}

// formatJobs pairs each FormatPartition with its partition's
// EncryptPartition, and refuses, before anything is written, a plan with
// a step this executor does not know, or an encrypted file system without
// its volume's step.
func formatJobs(steps []plan.Step) ([]formatJob, error) {
	encrypts := map[int]plan.EncryptPartition{}
	var jobs []formatJob
	for _, s := range steps {
		switch s := s.(type) {
		case plan.FormatPartition:
			jobs = append(jobs, formatJob{format: s})
		case plan.EncryptPartition:
			encrypts[s.Index] = s
		case plan.CreateTable, plan.RelocateBackup, plan.FactoryReset, plan.WipeRange, plan.DiscardRange,
			plan.WriteTable, plan.TellKernel, plan.WaitForUdev, plan.RepairTable,
			plan.GrowEntry, plan.AddEntry, plan.UpdateEntry:
		default:
			return nil, fmt.Errorf("internal error: the plan has a step this executor does not know (%T: %s)", s, s.Describe())
		}
	}
	for i, j := range jobs {
		if !j.format.Encrypted {
			continue
		}
		e, ok := encrypts[j.format.Index]
		if !ok {
			return nil, fmt.Errorf("internal error: future partition %d is to be formatted inside a LUKS2 volume the plan does not make", j.format.Index)
		}
		jobs[i].encrypt = &e
	}
	return jobs, nil
}

// Refusal is an error that stopped Run before its first write: the disk
// is as it was.
type Refusal struct{ Err error }

func (r *Refusal) Error() string { return r.Err.Error() }
func (r *Refusal) Unwrap() error { return r.Err }

// wipeForNewTable clears what an old label left outside the usable area
// (both GPT copies, an MBR) before a table is created from scratch (the
// plan's DiscardRange before it discards the disk, when allowed).
func wipeForNewTable(t blockdev.Device, p *plan.Plan, opts Options) error {
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
func formatAll(ctx context.Context, t blockdev.Device, fs []formatJob, opts Options) error {
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

func formatOne(ctx context.Context, t blockdev.Device, job formatJob, opts Options) error {
	f := job.format
	off, size := int64(f.Offset), int64(f.Size)
	opts.Log("Formatting future partition %d as %s.", f.Index, f.Format)
	// mkfs never discards: the plan's DiscardRange did, within its budget.
	req := fstype.Request{Format: f.Format, Label: f.Label, UUID: f.UUID, SectorSize: f.SectorSize}
	what := fmt.Sprintf("Formatting partition %d %q as %s (%s)", f.Index, f.Label, f.Format, plan.FormatBytes(f.FileSystemSize()))
	if job.encrypt != nil {
		what = fmt.Sprintf("Encrypting partition %d %q (LUKS2) and formatting it as %s (%s)", f.Index, f.Label, f.Format, plan.FormatBytes(f.FileSystemSize()))
	}
	task := opts.Progress.Start(what, 0)
	defer task.End()
	var err error
	if job.encrypt != nil {
		err = makeEncrypted(ctx, t, off, size, *job.encrypt, req, opts)
	} else {
		err = makeFileSystem(ctx, t, off, size, req, opts)
	}
	if err != nil {
		return fmt.Errorf("future partition %d: %w", f.Index, err)
	}
	opts.Log("Formatted future partition %d (%s, label %q, UUID %s).", f.Index, f.Format, f.Label, f.UUID)
	return nil
}

// wipeRange zeroes both ends of a new partition's range (old file
// system and RAID signatures live there; the plan's DiscardRange
// discards what lies between).
func wipeRange(t blockdev.Device, off, size int64) error {
	head := min(size, plan.WipeSpan)
	if err := zero(t, off, head); err != nil {
		return err
	}
	if tail := min(size-head, plan.WipeSpan); tail > 0 {
		if err := zero(t, off+size-tail, tail); err != nil {
			return err
		}
	}
	return nil
}

// makeFileSystem makes the file system in the range itself when it can
// (a header sprout writes, a tool that takes an offset into an image
// file), else on a loop device over the range.
func makeFileSystem(ctx context.Context, t blockdev.Device, off, size int64, req fstype.Request, opts Options) error {
	if done, err := mkfs.InRange(ctx, opts.Runner, t, off, size, req); done {
		return err
	}
	if err := t.Sync(); err != nil {
		return err
	}
	loop, err := blockdev.AttachLoop(t.Path(), off, size, t.SectorSize())
	if err != nil {
		return err
	}
	err = mkfs.OnNode(ctx, opts.Runner, loop.Path(), req)
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
func writeTable(t blockdev.Device, table *gpt.Table, opts Options) error {
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

// zero makes [off, off+n) of t read as zeros: with the device's
// ZeroRange when it has one (a hole in an image file, BLKZEROOUT on a
// disk: nothing to write, and an image stays sparse), else, or if that
// fails, by writing zeros.
func zero(t blockdev.Device, off, n int64) error {
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
