package blockdev

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// WaitForUdev waits until the system has caught up with the kernel's new
// partition view of the disk id, for at most timeout.
//
// With udev running (root.RunUdev/control exists) it returns once every
// path in links (e.g. /dev/disk/by-partlabel/home) exists and udev's event
// queue (root.RunUdev/queue) has stayed empty for a moment. An empty queue
// alone proves little: the uevent we are waiting for may not have reached
// udev yet, or udev may have handled an older event only (Ignition hit
// exactly this). So when the queue is empty but links are still missing, a
// "change" uevent is written to the disk's and its partitions' sysfs
// uevent files, which makes udev re-run its rules for them, and the wait
// goes on.
//
// Without udev nobody creates links; it waits until the devtmpfs nodes of
// all the kernel's partitions of the disk exist.
//
// Call it with no handle of the disk open (Session.SettleUdev does):
// udev postpones events of a disk whose BSD lock is held, and closing a
// disk opened for writing makes udev re-probe it. A no-op for an image
// file.
func WaitForUdev(ctx context.Context, root Paths, id Identity, links []string, timeout time.Duration) error {
	if id.DevNum == "" {
		return nil
	}
	root = root.orSystem()
	runDir := root.RunUdev
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if !exists(filepath.Join(runDir, "control")) {
		return waitForNodes(ctx, root, id)
	}

	// Give udev this long to handle the kernel's own uevents before
	// re-triggering; re-trigger at most a few times.
	grace := min(timeout/4, 2*time.Second)
	nextTrigger := time.Now().Add(grace)
	triggers := 0
	var quietSince time.Time
	for {
		missing := missingPaths(links)
		queued := exists(filepath.Join(runDir, "queue"))
		now := time.Now()
		switch {
		case len(missing) == 0 && !queued:
			if quietSince.IsZero() {
				quietSince = now
			}
			if now.Sub(quietSince) >= udevQuiet {
				return nil
			}
		case len(missing) > 0 && !queued && now.After(nextTrigger) && triggers < 3:
			quietSince = time.Time{}
			if err := triggerChange(root, id); err != nil {
				return err
			}
			triggers++
			nextTrigger = now.Add(grace)
		default:
			quietSince = time.Time{}
		}
		select {
		case <-ctx.Done():
			var problems []string
			if len(missing) > 0 {
				problems = append(problems, "missing "+strings.Join(missing, ", "))
			}
			if queued {
				problems = append(problems, "udev queue not empty")
			}
			if len(problems) == 0 {
				problems = append(problems, "udev did not settle")
			}
			return fmt.Errorf("waiting for udev on %s (%d change uevents sent): %s: %w",
				id.Path, triggers, strings.Join(problems, "; "), ctx.Err())
		case <-time.After(udevPoll):
		}
	}
}

// udevPoll is how often the wait re-checks; udevQuiet is how long links and
// an empty queue must hold before the wait ends.
const (
	udevPoll  = 50 * time.Millisecond
	udevQuiet = 200 * time.Millisecond
)

// waitForNodes waits for the device nodes of the disk's kernel partitions;
// devtmpfs creates them when the kernel adds a partition.
func waitForNodes(ctx context.Context, root Paths, id Identity) error {
	for {
		parts, err := root.Partitions(id.DevNum)
		if err != nil {
			return fmt.Errorf("%s: %w", id.Path, err)
		}
		var nodes []string
		for _, p := range parts {
			nodes = append(nodes, p.Node)
		}
		missing := missingPaths(nodes)
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for partition nodes of %s (no udev): missing %s: %w",
				id.Path, strings.Join(missing, ", "), ctx.Err())
		case <-time.After(udevPoll):
		}
	}
}

// triggerChange asks the kernel to send a "change" uevent for the disk and
// each of its partitions, like `udevadm trigger --action=change`.
func triggerChange(root Paths, id Identity) error {
	dir, err := root.dirOf(id.DevNum)
	if err != nil {
		return err
	}
	parts, err := root.partitionDirs(id.DevNum)
	if err != nil {
		return fmt.Errorf("%s: %w", id.Path, err)
	}
	dirs := []string{dir}
	for _, n := range slices.Sorted(maps.Keys(parts)) {
		dirs = append(dirs, parts[n])
	}
	for _, dir := range dirs {
		if err := os.WriteFile(filepath.Join(dir, "uevent"), []byte("change"), 0); err != nil {
			return fmt.Errorf("trigger change uevent for %s: %w", root.nodeOf(dir), err)
		}
	}
	return nil
}

func missingPaths(paths []string) []string {
	var missing []string
	for _, p := range paths {
		if !exists(p) {
			missing = append(missing, p)
		}
	}
	return missing
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
