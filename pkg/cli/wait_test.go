package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sprout-initrd/sprout/pkg/discover"
)

func TestWaitForDiskFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want time.Duration
		err  string
	}{
		{nil, 0, ""},
		{[]string{"--wait-for-disk=90s"}, 90 * time.Second, ""},
		{[]string{"--wait-for-disk", "1m"}, time.Minute, ""},
		{[]string{"--wait-for-disk=90"}, 0, "missing unit"},
		{[]string{"--wait-for-disk=-1s"}, 0, "must not be negative"},
		{[]string{"--wait-for-disk=90s", "/dev/vda"}, 0, "cannot be combined with a device"},
	} {
		c, err := parse(tc.args)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.err)
		case err == nil && c.waitForDisk != tc.want:
			t.Errorf("%q: %s, want %s", tc.args, c.waitForDisk, tc.want)
		}
	}
}

// fakeBoot is a /proc, /sys and /dev where the disk vda can appear late.
type fakeBoot struct {
	root string
	env  discover.Env
}

func newFakeBoot(t *testing.T, cmdline string) *fakeBoot {
	root := t.TempDir()
	b := &fakeBoot{root: root, env: discover.Env{
		ProcCmdline: filepath.Join(root, "cmdline"),
		EFIVars:     filepath.Join(root, "efivars"),
		SysBlock:    filepath.Join(root, "sys/class/block"),
		Dev:         filepath.Join(root, "dev"),
		MountInfo:   filepath.Join(root, "mountinfo"),
	}}
	for _, d := range []string{b.env.SysBlock, b.env.Dev} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for path, content := range map[string]string{b.env.ProcCmdline: cmdline, b.env.MountInfo: ""} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// addDisk makes the whole disk vda appear, as udev would announce it.
func (b *fakeBoot) addDisk(t *testing.T) {
	dir := filepath.Join(b.env.SysBlock, "vda")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		filepath.Join(dir, "dev"): "253:0\n", filepath.Join(dir, "size"): "2048\n",
		filepath.Join(b.env.Dev, "vda"): "",
	} {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFindDiskWaits(t *testing.T) {
	boot := newFakeBoot(t, "root=/dev/vda\n")
	now := time.Unix(1000, 0)
	sleeps := 0
	var log bytes.Buffer
	r := &run{cfg: &config{}, log: &logger{w: &log}}
	dev, err := r.findDisk(boot.env, discover.WaitOptions{
		Timeout: 90 * time.Second,
		Now:     func() time.Time { return now },
		Sleep: func(d time.Duration) {
			now = now.Add(d)
			if sleeps++; sleeps == 3 {
				boot.addDisk(t)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if dev != filepath.Join(boot.env.Dev, "vda") {
		t.Errorf("dev = %s", dev)
	}
	out := log.String()
	for _, want := range []string{
		"Waiting up to 1m30s for the disk: root=: ",
		"Using " + dev + " (found after 300ms).",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log does not contain %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "Waiting up to"); n != 1 {
		t.Errorf("%d waiting lines, want 1", n)
	}
}

func TestFindDiskTimesOut(t *testing.T) {
	boot := newFakeBoot(t, "root=/dev/vda\n")
	now := time.Unix(1000, 0)
	var log bytes.Buffer
	r := &run{cfg: &config{}, log: &logger{w: &log}}
	_, err := r.findDisk(boot.env, discover.WaitOptions{
		Timeout: 2 * time.Second,
		Now:     func() time.Time { return now },
		Sleep:   func(d time.Duration) { now = now.Add(d) },
	})
	if !errors.Is(err, discover.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"gave up after waiting 2s", "tried: sprout.device=: not on the kernel command line",
		"root=: ", "/dev/vda"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not contain %q: %s", want, msg)
		}
	}
	if now.Sub(time.Unix(1000, 0)) != 2*time.Second {
		t.Errorf("waited %s, want 2s", now.Sub(time.Unix(1000, 0)))
	}
}

func TestFindDiskWithNothingToWaitFor(t *testing.T) {
	boot := newFakeBoot(t, "root=tmpfs\n")
	var log bytes.Buffer
	r := &run{cfg: &config{}, log: &logger{w: &log}}
	_, err := r.findDisk(boot.env, discover.WaitOptions{
		Timeout: 90 * time.Second,
		Sleep:   func(time.Duration) { t.Fatal("slept, but no method names a device") },
	})
	if !errors.Is(err, discover.ErrNotFound) || strings.Contains(log.String(), "Waiting") {
		t.Errorf("err = %v; log:\n%s", err, log.String())
	}
}
