// Package blockdevtest has fixtures for tests that need real block devices:
// loop devices over sparse files, partitions added through BLKPG (this
// project's CI kernel has no GPT parser), mounts, and a kernel uevent
// monitor. Every fixture cleans up after itself through t.Cleanup.
package blockdevtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// Run runs a command and returns its standard output; it fails the test
// (with the command's output) if the command fails.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := run(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func run(name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// runTrying runs a command up to tries times, 100 ms apart, until it
// succeeds: for failures another process causes for a moment.
func runTrying(tries int, name string, args ...string) (out string, err error) {
	for i := range tries {
		if i > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		if out, err = run(name, args...); err == nil {
			return out, nil
		}
	}
	return out, err
}

// LoopOptions describes a loop disk fixture.
type LoopOptions struct {
	Size       int64 // bytes of the sparse backing file
	SectorSize int   // logical sector size; 0 means 512
	ReadOnly   bool
}

// LoopDisk is a loop device over a sparse file in t.TempDir().
type LoopDisk struct {
	Path    string // /dev/loopN
	Backing string // the sparse file
}

// NewLoopDisk attaches a loop device with losetup. At cleanup it removes
// any partitions the test added (a loop device without partition scanning
// keeps BLKPG partitions even after detaching) and detaches the device.
// Register mounts after this, so that they are undone first.
func NewLoopDisk(t testing.TB, opts LoopOptions) *LoopDisk {
	t.Helper()
	harness.RequireLoopDevices(t, "a loop disk")
	harness.RequireTools(t, "losetup")
	if opts.SectorSize == 0 {
		opts.SectorSize = 512
	}
	backing := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(backing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, opts.Size); err != nil {
		t.Fatal(err)
	}
	args := []string{"--find", "--show", "--sector-size", strconv.Itoa(opts.SectorSize)}
	if opts.ReadOnly {
		args = append(args, "--read-only")
	}
	args = append(args, backing)
	// Other processes may race us for the same free loop device.
	out, err := runTrying(5, "losetup", args...)
	if err != nil {
		t.Fatal(err)
	}
	l := &LoopDisk{Path: strings.TrimSpace(out), Backing: backing}
	t.Cleanup(func() { l.destroy(t) })
	return l
}

func (l *LoopDisk) destroy(t testing.TB) {
	t.Helper()
	name := filepath.Base(l.Path)
	parts, _ := filepath.Glob(filepath.Join("/sys/block", name, name+"*"))
	for _, p := range parts {
		n, err := os.ReadFile(filepath.Join(p, "partition"))
		if err != nil {
			continue
		}
		// A delete fails with EBUSY while anything has the partition open,
		// and other packages' tests (run in parallel) probe block devices
		// for a moment; a partition left behind would make the next user
		// of this loop device fail, so wait a little for them.
		if _, err := runTrying(20, "partx", "--delete", "--nr", strings.TrimSpace(string(n)), l.Path); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	if _, err := run("losetup", "--detach", l.Path); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

// Mount mounts a file system on node at a fresh directory and unmounts it
// at cleanup.
func Mount(t testing.TB, node, fstype string) string {
	t.Helper()
	dir := t.TempDir()
	Run(t, "mount", "-t", fstype, node, dir)
	t.Cleanup(func() {
		if _, err := run("umount", dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return dir
}

// Uevent is one kernel uevent, e.g. Action "remove",
// DevPath "/devices/virtual/block/loop3/loop3p1".
type Uevent struct {
	Action  string
	DevPath string
	Env     map[string]string
}

// UeventMonitor records kernel uevents (the netlink multicast group udev
// listens to) from its creation until Stop.
type UeventMonitor struct {
	fd     int
	mu     sync.Mutex
	events []Uevent
	done   chan struct{}
}

// NewUeventMonitor starts recording kernel uevents.
func NewUeventMonitor(t testing.TB) *UeventMonitor {
	t.Helper()
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		t.Fatalf("uevent socket: %v", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		t.Fatalf("bind uevent socket: %v", err)
	}
	// Wake the reader now and then so that Stop is noticed.
	tv := unix.Timeval{Usec: 100_000}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		t.Fatalf("uevent socket timeout: %v", err)
	}
	m := &UeventMonitor{fd: fd, done: make(chan struct{})}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		buf := make([]byte, 64*1024)
		for {
			select {
			case <-m.done:
				return
			default:
			}
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				continue
			}
			if ev, ok := parseUevent(buf[:n]); ok {
				m.mu.Lock()
				m.events = append(m.events, ev)
				m.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		m.stop()
		<-stopped
		unix.Close(fd)
	})
	return m
}

func (m *UeventMonitor) stop() {
	select {
	case <-m.done:
	default:
		close(m.done)
	}
}

// Events returns the uevents seen so far, after letting in-flight ones
// arrive.
func (m *UeventMonitor) Events() []Uevent {
	time.Sleep(300 * time.Millisecond)
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Uevent(nil), m.events...)
}

func parseUevent(b []byte) (Uevent, bool) {
	fields := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	action, devpath, ok := strings.Cut(fields[0], "@")
	if !ok {
		return Uevent{}, false // a udev-format message, not the kernel's
	}
	ev := Uevent{Action: action, DevPath: devpath, Env: map[string]string{}}
	for _, f := range fields[1:] {
		if k, v, ok := strings.Cut(f, "="); ok {
			ev.Env[k] = v
		}
	}
	return ev, true
}
