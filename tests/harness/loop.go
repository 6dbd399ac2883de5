package harness

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Loop is a loop device attached by AttachLoop.
type Loop struct {
	Dev     string
	Backing string
}

// AttachLoop attaches path to a free loop device with the given logical
// sector size and partition scanning enabled. Needs root.
func AttachLoop(ctx context.Context, path string, sectorSize int64) (*Loop, error) {
	var err error
	// Parallel attaches (ours, and systemd-repart's own loop devices for
	// mkfs) can race for the same free device; losetup then fails with
	// EBUSY, or with ENXIO when the device it was handed is being torn
	// down, and a retry picks another one.
	for attempt := 0; attempt < 10; attempt++ {
		var res Result
		res, err = MustSucceed(ctx, "losetup", "--find", "--show", "--partscan",
			"--sector-size", strconv.FormatInt(sectorSize, 10), path)
		if err == nil {
			backing, aerr := filepath.Abs(path)
			if r, rerr := filepath.EvalSymlinks(backing); aerr == nil && rerr == nil {
				backing = r
			}
			return &Loop{Dev: strings.TrimSpace(res.Stdout), Backing: backing}, nil
		}
		if msg := err.Error(); !strings.Contains(msg, "busy") && !strings.Contains(msg, "No such device or address") {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
	}
	return nil, fmt.Errorf("attach loop device: %w", err)
}

// Detach detaches the loop device (its kernel partitions go with it) and
// waits until the kernel has really let go of it. losetup only marks a
// device that udev still holds open (probing a partition the tool just
// added) for automatic detach; until that happens its partitions stay
// visible, and mkfs.btrfs run by the next tool on a copy of the same image
// refuses the copy's derived filesystem UUID as "non-unique".
func (l *Loop) Detach(ctx context.Context) error {
	if _, err := MustSucceed(ctx, "losetup", "--detach", l.Dev); err != nil {
		return fmt.Errorf("detach %s: %w", l.Dev, err)
	}
	backing := filepath.Join("/sys/block", filepath.Base(l.Dev), "loop", "backing_file")
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Gone, or already reused for another image by a parallel test.
		b, err := os.ReadFile(backing)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)") != l.Backing) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("detach %s: still attached to %s after 30 s", l.Dev, l.Backing)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Refresh makes the loop device pick up a new size of its backing file.
func (l *Loop) Refresh(ctx context.Context) error {
	if _, err := MustSucceed(ctx, "losetup", "--set-capacity", l.Dev); err != nil {
		return fmt.Errorf("refresh capacity of %s: %w", l.Dev, err)
	}
	return nil
}
