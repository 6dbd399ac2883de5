package harness

import (
	"context"
	"fmt"
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
	// EBUSY and a retry picks another one.
	for attempt := 0; attempt < 10; attempt++ {
		var res Result
		res, err = MustSucceed(ctx, "losetup", "--find", "--show", "--partscan",
			"--sector-size", strconv.FormatInt(sectorSize, 10), path)
		if err == nil {
			return &Loop{Dev: strings.TrimSpace(res.Stdout), Backing: path}, nil
		}
		if !strings.Contains(err.Error(), "busy") {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
	}
	return nil, fmt.Errorf("attach loop device: %w", err)
}

// Detach detaches the loop device (its kernel partitions go with it).
func (l *Loop) Detach(ctx context.Context) error {
	if _, err := MustSucceed(ctx, "losetup", "--detach", l.Dev); err != nil {
		return fmt.Errorf("detach %s: %w", l.Dev, err)
	}
	return nil
}

// Refresh makes the loop device pick up a new size of its backing file.
func (l *Loop) Refresh(ctx context.Context) error {
	if _, err := MustSucceed(ctx, "losetup", "--set-capacity", l.Dev); err != nil {
		return fmt.Errorf("refresh capacity of %s: %w", l.Dev, err)
	}
	return nil
}
