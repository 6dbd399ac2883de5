package discover

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeClock is a clock whose Sleep only moves time forward, and runs
// onSleep after each sleep (to make a disk appear).
type fakeClock struct {
	now     time.Time
	sleeps  int
	onSleep func(n int)
}

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Sleep(d time.Duration) {
	c.now = c.now.Add(d)
	c.sleeps++
	if c.onSleep != nil {
		c.onSleep(c.sleeps)
	}
}

func (c *fakeClock) options(timeout time.Duration, announced *[]string) WaitOptions {
	return WaitOptions{Timeout: timeout, Now: c.Now, Sleep: c.Sleep,
		Waiting: func(why string) { *announced = append(*announced, why) }}
}

func TestWaitFindsADiskThatAppearsLater(t *testing.T) {
	f := newFake(t)
	dataDisk(f, "vdb")
	f.cmdline("root=PARTLABEL=root")
	clock := &fakeClock{now: time.Unix(1000, 0), onSleep: func(n int) {
		if n == 5 {
			appliance(f, "vda", 512)
		}
	}}
	var announced []string
	disk, tried, waited, err := Wait(f.env, clock.options(90*time.Second, &announced))
	if err != nil {
		t.Fatal(err)
	}
	if disk != dev(f, "vda") {
		t.Errorf("disk = %s, want vda", disk)
	}
	if clock.sleeps != 5 || waited != 500*time.Millisecond {
		t.Errorf("%d sleeps, waited %s; want 5 and 500ms", clock.sleeps, waited)
	}
	if len(announced) != 1 || !strings.Contains(announced[0], "root=: no device has PARTLABEL=root") {
		t.Errorf("announced %q, want one line about root=", announced)
	}
	if !strings.Contains(tried[len(tried)-1], "PARTLABEL=root is ") {
		t.Errorf("tried = %q", tried)
	}
}

func TestWaitGivesUpWithWhatItTried(t *testing.T) {
	f := newFake(t)
	dataDisk(f, "vda")
	f.cmdline("root=PARTLABEL=root")
	clock := &fakeClock{now: time.Unix(1000, 0)}
	var announced []string
	_, _, _, err := Wait(f.env, clock.options(90*time.Second, &announced))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if clock.sleeps != 900 {
		t.Errorf("%d looks after the first, want 900 (90 s at 100 ms)", clock.sleeps)
	}
	msg := err.Error()
	for _, m := range []string{"gave up after waiting 1m30s", "sprout.device=: not on the kernel command line",
		"LoaderDevicePartUUID: not set", "root=: no device has PARTLABEL=root (scanned vda)"} {
		if !strings.Contains(msg, m) {
			t.Errorf("error does not mention %q:\n%s", m, msg)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line:\n%s", msg)
	}
	if len(announced) != 1 {
		t.Errorf("announced %d times, want once", len(announced))
	}
}

func TestWaitFailsAtOnceWhenWaitingCannotHelp(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(f *fakeSystem)
		sentinel error
	}{
		{"no method applies", func(f *fakeSystem) { appliance(f, "vda", 512) }, ErrNotFound},
		{"root on tmpfs", func(f *fakeSystem) {
			appliance(f, "vda", 512)
			f.cmdline("root=tmpfs")
		}, ErrNotFound},
		{"ambiguous", func(f *fakeSystem) {
			appliance(f, "vda", 512)
			appliance(f, "vdb", 512)
			f.cmdline("root=PARTLABEL=root")
		}, ErrAmbiguous},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			tt.setup(f)
			clock := &fakeClock{now: time.Unix(1000, 0)}
			var announced []string
			_, _, _, err := Wait(f.env, clock.options(90*time.Second, &announced))
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("err = %v, want %v", err, tt.sentinel)
			}
			if clock.sleeps != 0 || len(announced) != 0 {
				t.Errorf("slept %d times, announced %q; want neither", clock.sleeps, announced)
			}
		})
	}
}

func TestWaitWithoutTimeoutLooksOnce(t *testing.T) {
	f := newFake(t)
	f.cmdline("root=PARTLABEL=root")
	clock := &fakeClock{now: time.Unix(1000, 0)}
	var announced []string
	_, _, _, err := Wait(f.env, clock.options(0, &announced))
	if !errors.Is(err, ErrNotFound) || clock.sleeps != 0 || len(announced) != 0 {
		t.Errorf("err %v, %d sleeps, announced %q; want ErrNotFound at once", err, clock.sleeps, announced)
	}
}

// A torn primary GPT (a power cut while it was written): the kernel shows
// no partitions, udev makes no links, and the disk must still be found
// through the backup GPT, by every method that names a partition.
func TestFindThroughTheBackupGPT(t *testing.T) {
	for _, tc := range []struct{ name, cmdline string }{
		{"PARTLABEL", "root=PARTLABEL=root"},
		{"PARTUUID", "root=PARTUUID=" + rootUUID.String()},
		{"LoaderDevicePartUUID", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.addDisk("vda", 11*gib, 512, []part{
				{name: "boot", uuid: espUUID, noDev: true},
				{name: "root", uuid: rootUUID, noDev: true},
			})
			dataDisk(f, "vdb")
			tearPrimaryHeader(t, dev(f, "vda"))
			if tc.cmdline != "" {
				f.cmdline(tc.cmdline)
			} else {
				f.efiVar(strings.ToUpper(espUUID.String()))
			}
			disk, tried, err := Find(f.env)
			if err != nil {
				t.Fatal(err)
			}
			if disk != dev(f, "vda") {
				t.Errorf("disk = %s; tried %q", disk, tried)
			}
		})
	}
}

// tearPrimaryHeader flips a byte of the primary GPT header's CRC.
func tearPrimaryHeader(t *testing.T, node string) {
	t.Helper()
	fh, err := os.OpenFile(node, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	b := make([]byte, 1)
	if _, err := fh.ReadAt(b, 512+16); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := fh.WriteAt(b, 512+16); err != nil {
		t.Fatal(err)
	}
}

// The fake efivarfs must fail a reader that seeks, as the real one does.
func TestFakeEFIVarCannotBeSeeked(t *testing.T) {
	f := newFake(t)
	f.efiVar(espUUID.String())
	path := filepath.Join(f.env.EFIVars, LoaderDevicePartUUIDVar)

	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Seek(4, io.SeekStart); !errors.Is(err, syscall.ESPIPE) {
		t.Errorf("Seek: %v, want ESPIPE", err)
	}
	if _, err := r.ReadAt(make([]byte, 8), 4); !errors.Is(err, syscall.ESPIPE) {
		t.Errorf("ReadAt: %v, want ESPIPE", err)
	}
	r.Close()

	// And the way sprout reads it works, more than once (Wait looks again).
	for range 3 {
		if id, note := readLoaderDevicePartUUID(f.env.EFIVars); id != espUUID.String() {
			t.Fatalf("got %q (%s)", id, note)
		}
	}
}

func TestWaitedIsZeroWhenTheFirstLookFindsTheDisk(t *testing.T) {
	f := newFake(t)
	appliance(f, "vda", 512)
	f.cmdline("root=PARTLABEL=root")
	clock := &fakeClock{now: time.Unix(1000, 0)}
	o := WaitOptions{Timeout: time.Minute, Sleep: clock.Sleep,
		Now: func() time.Time { clock.now = clock.now.Add(time.Second); return clock.now }} // a slow look
	if _, _, waited, err := Wait(f.env, o); err != nil || waited != 0 {
		t.Errorf("waited %s, err %v; want 0 and no error", waited, err)
	}
}
