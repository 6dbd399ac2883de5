package blockdev

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// flockWait takes a BSD lock (flock) on fd, polling with LOCK_NB so that
// a stuck holder turns into an error after timeout instead of a hang. udev
// holds a shared lock for a moment while it probes a device; that is the
// usual holder waited for.
func flockWait(fd int, path string, exclusive bool, timeout, poll time.Duration) error {
	how, kind := unix.LOCK_SH, "shared"
	if exclusive {
		how, kind = unix.LOCK_EX, "exclusive"
	}
	deadline := time.Now().Add(timeout)
	for {
		err := unix.Flock(fd, how|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("lock %s (%s): %w", path, kind, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lock %s (%s): still held by another process after %s: %w", path, kind, timeout, err)
		}
		time.Sleep(poll)
	}
}
