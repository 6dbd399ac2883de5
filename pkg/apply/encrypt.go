package apply

import (
	"context"
	"fmt"
	"os"

	"github.com/sprout-initrd/sprout/pkg/blockdev"
	"github.com/sprout-initrd/sprout/pkg/luks"
	"github.com/sprout-initrd/sprout/pkg/mkfs"
)

// makeEncrypted makes the LUKS2 volume of a future partition on a loop
// device over its range and the file system inside the opened volume, as
// 252 does; the partition's entry is written only after both, so a crash
// leaves no entry and the next run redoes the range.
func makeEncrypted(ctx context.Context, t blockdev.Device, off, size int64, req mkfs.Request, opts Options) error {
	e, ok := opts.encrypts[uint64(off)]
	if !ok {
		return fmt.Errorf("internal error: no encryption step for the range at offset %d", off)
	}
	if err := t.Sync(); err != nil {
		return err
	}
	loop, err := blockdev.AttachLoop(t.Path(), off, size, t.SectorSize())
	if err != nil {
		return err
	}
	if e.Mode.UsesTPM2() {
		opts.Log("Encrypting future partition %d (LUKS2, Encrypt=%s, UUID %s; the TPM2 key is bound to %s).", e.Index, e.Mode, e.UUID, e.Settings.Policy())
	} else {
		opts.Log("Encrypting future partition %d (LUKS2, Encrypt=%s, UUID %s).", e.Index, e.Mode, e.UUID)
	}
	v := luks.Volume{
		Device: loop.Path(), UUID: e.UUID, Label: e.Label, SectorSize: t.SectorSize(),
		Mode: e.Mode, Settings: e.Settings,
	}
	err = luks.Make(ctx, opts.Runner, v, keyDir(opts.KeyDir), func(node string) error {
		return formatInside(ctx, node, req, opts)
	})
	if err == nil {
		err = loop.Sync()
	}
	if derr := loop.Detach(); err == nil {
		err = derr
	}
	if err != nil {
		return fmt.Errorf("LUKS2 volume: %w", err)
	}
	return nil
}

// formatInside makes the file system on the opened volume's node.
func formatInside(ctx context.Context, node string, req mkfs.Request, opts Options) error {
	if req.Format == "swap" {
		f, err := os.OpenFile(node, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		size, err := f.Seek(0, 2)
		if err == nil {
			err = mkfs.WriteSwap(f, 0, size, os.Getpagesize(), req.Label, req.UUID)
		}
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	args, err := mkfs.Args(req, node)
	if err != nil {
		return err
	}
	return opts.Runner(ctx, args)
}

// keyDir is where key files live while a volume is made: a RAM file
// system in the initrd (/run), never the disk being changed.
func keyDir(dir string) string {
	if dir != "" {
		return dir
	}
	if st, err := os.Stat("/run"); err == nil && st.IsDir() {
		return "/run"
	}
	return os.TempDir()
}
