package apply

import (
	"context"
	"fmt"
	"os"

	"github.com/sprout-initrd/sprout/pkg/blockdev"
	"github.com/sprout-initrd/sprout/pkg/fstype"
	"github.com/sprout-initrd/sprout/pkg/luks"
	"github.com/sprout-initrd/sprout/pkg/mkfs"
	"github.com/sprout-initrd/sprout/pkg/plan"
)

// makeEncrypted makes the LUKS2 volume of a future partition on a loop
// device over its range and the file system inside the opened volume, as
// 252 does; the partition's entry is written only after both, so a crash
// leaves no entry and the next run redoes the range.
func makeEncrypted(ctx context.Context, t blockdev.Device, off, size int64, e plan.EncryptPartition, req fstype.Request, opts Options) error {
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
		Device: loop.Path(), UUID: e.UUID, Label: e.Label, SectorSize: e.SectorSize, KeyBits: e.KeyBits,
		Mode: e.Mode, Settings: e.Settings,
	}
	err = luks.Make(ctx, luks.Runner(opts.Runner), v, keyDir(opts.KeyDir), func(node string) error {
		return mkfs.OnNode(ctx, opts.Runner, node, req)
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
