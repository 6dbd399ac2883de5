package apply_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sprout-initrd/sprout/pkg/apply"
	"github.com/sprout-initrd/sprout/pkg/blockdev"
	"github.com/sprout-initrd/sprout/pkg/plan"
	"github.com/sprout-initrd/sprout/tests/harness"
)

// encryptRun applies a plan with one encrypted new partition to a grown
// image; the runner records the command lines instead of running them
// (this host may have no device-mapper; tests/encrypt runs the real ones
// in a guest) and fails the one starting with failAt, if any.
func encryptRun(t *testing.T, failAt string) (calls []string, p *plan.Plan, path string, err error) {
	t.Helper()
	harness.RequireLoopDevices(t, "a loop device over the future range")
	path = seedImage(t)
	defs := loadDefinitions(t, map[string]string{"home.conf": "[Partition]\nType=home\nEncrypt=key-file\nLabel=home\n"})
	p, _ = planFor(t, path, defs)
	dev, derr := blockdev.Open(path, blockdev.OpenOptions{Write: true, Flock: blockdev.ExclusiveFlock})
	if derr != nil {
		t.Fatal(derr)
	}
	defer dev.Close()
	var mu sync.Mutex
	runner := func(_ context.Context, args []string) error {
		mu.Lock()
		defer mu.Unlock()
		line := strings.Join(args, " ")
		calls = append(calls, line)
		if failAt != "" && strings.HasPrefix(line, failAt) {
			return errors.New("failed on purpose")
		}
		return nil
	}
	err = apply.Run(context.Background(), handleDisk{dev}, p, apply.Options{Runner: runner, KeyDir: t.TempDir()})
	return calls, p, path, err
}

// TestEncryptedPartitionIsMadeBeforeItsEntry: LUKS2 format and open on a
// loop device over the future range, mkfs inside the mapping with the
// partition's file system UUID, close; the entry appears only after.
func TestEncryptedPartitionIsMadeBeforeItsEntry(t *testing.T) {
	calls, p, path, err := encryptRun(t, "")
	if err != nil {
		t.Fatal(err)
	}
	var row plan.Partition
	for _, r := range p.Partitions {
		if r.Activity == plan.Create {
			row = r
		}
	}
	mapping := "/dev/mapper/sprout-" + row.LUKSUUID.String()
	want := []string{"cryptsetup luksFormat", "cryptsetup open", "mkfs.ext4", "cryptsetup close"}
	if len(calls) != len(want) {
		t.Fatalf("calls:\n%s", strings.Join(calls, "\n"))
	}
	for i, c := range calls {
		if !strings.HasPrefix(c, want[i]) {
			t.Errorf("call %d is %q, want %s…", i, c, want[i])
		}
	}
	if !strings.Contains(calls[0], "--uuid "+row.LUKSUUID.String()) || !strings.Contains(calls[0], " /dev/loop") {
		t.Errorf("luksFormat: %s", calls[0])
	}
	if !strings.HasSuffix(calls[2], " "+mapping) || !strings.Contains(calls[2], "-U "+row.FileSystemUUID.String()) {
		t.Errorf("mkfs is not made inside the volume with the file system UUID: %s", calls[2])
	}
	if got := entries(t, path); got != len(p.New.Entries) {
		t.Errorf("%d entries after the run, the plan has %d", got, len(p.New.Entries))
	}
	checkNoLoop(t, path)
}

// TestEncryptFailureWritesNoEntry: a failure at any command leaves the
// old entries only (the range is free space to the table), closes what
// was opened, and detaches the loop device.
func TestEncryptFailureWritesNoEntry(t *testing.T) {
	for _, failAt := range []string{"cryptsetup luksFormat", "cryptsetup open", "mkfs.ext4", "cryptsetup close"} {
		calls, p, path, err := encryptRun(t, failAt)
		if err == nil {
			t.Fatalf("%s: the run succeeded", failAt)
		}
		if got := entries(t, path); got != len(p.Old.Entries) {
			t.Errorf("%s failed: %d entries, want the old %d", failAt, got, len(p.Old.Entries))
		}
		opened := false // an open that succeeded
		for _, c := range calls {
			opened = opened || (strings.HasPrefix(c, "cryptsetup open") && failAt != "cryptsetup open")
		}
		if last := calls[len(calls)-1]; opened && !strings.HasPrefix(last, "cryptsetup close") {
			t.Errorf("%s failed: the volume was left open (calls %q)", failAt, calls)
		}
		checkNoLoop(t, path)
	}
}

func entries(t *testing.T, path string) int {
	t.Helper()
	tb, _, _ := readTable(t, path)
	return len(tb.Entries)
}

// handleDisk runs a plan through one handle, which stays open until the
// test closes it.
type handleDisk struct{ h *blockdev.Handle }

func (d handleDisk) Writer() (blockdev.Device, error)                          { return d.h, nil }
func (d handleDisk) Kernel() blockdev.Kernel                                   { return d.h }
func (d handleDisk) SettleUdev(context.Context, []string, time.Duration) error { return nil }

// checkNoLoop fails when a loop device over path is still attached.
func checkNoLoop(t *testing.T, path string) {
	t.Helper()
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(b)) == path {
			t.Errorf("%s is still attached to %s", path, f)
		}
	}
}
