package blockdev

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sprout-initrd/sprout/pkg/blockdev/blockdevtest"
	"golang.org/x/sys/unix"
)

// fakeUdev makes a directory that looks like /run/udev of a running udev.
func fakeUdev(t *testing.T, queued bool) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "control"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if queued {
		if err := os.WriteFile(filepath.Join(dir, "queue"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestWaitForUdevWithoutUdev(t *testing.T) {
	dev, _ := loopDisk(t, 32*mib, 512)
	node := mustAdd(t, dev, 1, mib, 8*mib)
	noUdev := t.TempDir()
	// Links are udev's; without udev only the devtmpfs nodes count.
	err := WaitForUdev(context.Background(), Paths{RunUdev: noUdev}, dev.Identity(), []string{"/dev/disk/by-partlabel/never"}, 2*time.Second)
	if err != nil {
		t.Fatalf("no udev, node %s present: %v", node, err)
	}
}

func TestWaitForUdevWaitsForLinksAndQueue(t *testing.T) {
	dev, _ := loopDisk(t, 32*mib, 512)
	mustAdd(t, dev, 1, mib, 8*mib)
	run := fakeUdev(t, true)
	link := filepath.Join(t.TempDir(), "by-partlabel-home")

	// udev "finishes" in two steps: the link appears, later the queue drains.
	go func() {
		time.Sleep(300 * time.Millisecond)
		os.Symlink(PartitionNode(dev.Path(), 1), link)
		time.Sleep(300 * time.Millisecond)
		os.Remove(filepath.Join(run, "queue"))
	}()
	begin := time.Now()
	if err := WaitForUdev(context.Background(), Paths{RunUdev: run}, dev.Identity(), []string{link}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(begin); elapsed < 600*time.Millisecond {
		t.Errorf("returned after %s, before the queue drained", elapsed)
	}
}

func TestWaitForUdevTimesOutNamingLinks(t *testing.T) {
	dev, l := loopDisk(t, 32*mib, 512)
	mustAdd(t, dev, 1, mib, 8*mib)
	run := fakeUdev(t, false)
	present := filepath.Join(t.TempDir(), "present")
	if err := os.WriteFile(present, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "by-partuuid-missing")
	mon := blockdevtest.NewUeventMonitor(t)

	err := WaitForUdev(context.Background(), Paths{RunUdev: run}, dev.Identity(), []string{present, missing}, 1500*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	if !strings.Contains(err.Error(), "missing "+missing) || strings.Contains(err.Error(), present) {
		t.Errorf("error %q should name exactly the missing link %s", err, missing)
	}

	// The queue was empty while the link was missing, so change uevents
	// were sent for the disk and its partition.
	disk := filepath.Base(l.Path)
	seen := map[string]bool{}
	for _, ev := range mon.Events() {
		if ev.Action == "change" {
			seen[filepath.Base(ev.DevPath)] = true
		}
	}
	if !seen[disk] || !seen[filepath.Base(PartitionNode(l.Path, 1))] {
		t.Errorf("change uevents seen for %v, want %s and its partition 1", seen, disk)
	}
}

// TestSessionSettleUdevReleasesLock: the session's lock is held until
// SettleUdev, which releases both handles before it waits (udev would
// postpone the events waited for), and waits by the disk's identity.
func TestSessionSettleUdevReleasesLock(t *testing.T) {
	l := blockdevtest.NewLoopDisk(t, blockdevtest.LoopOptions{Size: 32 * mib})
	s, err := OpenSession(l.Path, SessionOptions{Write: true, Paths: Paths{RunUdev: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	w, err := s.Writer()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Kernel().AddPartition(1, mib, 8*mib); err != nil {
		t.Fatal(err)
	}
	if !lockHeld(t, l.Path, unix.LOCK_SH) {
		t.Fatal("session: lock not held")
	}
	if err := s.SettleUdev(context.Background(), nil, time.Second); err != nil {
		t.Fatal(err)
	}
	if lockHeld(t, l.Path, unix.LOCK_SH) {
		t.Error("lock still held: udev would postpone the events we wait for")
	}
	if _, err := w.ReadAt(make([]byte, 512), 0); err == nil {
		t.Error("the writable handle is still open after SettleUdev")
	}
	if err := s.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
}

// TestSessionDryRunRefusesWriter: a session opened without Write holds a
// shared lock and gives out no writable handle.
func TestSessionDryRunRefusesWriter(t *testing.T) {
	path := sparseFile(t, mib)
	s, err := OpenSession(path, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	if _, err := s.Writer(); err == nil {
		t.Error("Writer of a read-only session: no error")
	}
	if !lockHeld(t, path, unix.LOCK_EX) || lockHeld(t, path, unix.LOCK_SH) {
		t.Error("read-only session: want a shared lock, not an exclusive one")
	}
}

func TestWaitForUdevRespectsContext(t *testing.T) {
	dev, _ := loopDisk(t, 32*mib, 512)
	run := fakeUdev(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WaitForUdev(ctx, Paths{RunUdev: run}, dev.Identity(), nil, time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestWaitForUdevFileIsNoop(t *testing.T) {
	dev := openT(t, sparseFile(t, mib), OpenOptions{})
	if err := WaitForUdev(context.Background(), Paths{}, dev.Identity(), []string{"/nonexistent"}, time.Millisecond); err != nil {
		t.Errorf("image file: %v", err)
	}
}
