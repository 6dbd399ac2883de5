package blockdev

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sprout-initrd/sprout/pkg/blockdev/blockdevtest"
	"github.com/sprout-initrd/sprout/tests/harness"
	"golang.org/x/sys/unix"
)

func attachT(t *testing.T, path string, offset, size int64, blockSize int, withConfigure bool) *Loop {
	t.Helper()
	l, err := attach(path, offset, size, blockSize, withConfigure)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Detach(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return l
}

func sysfsLoop(t *testing.T, l *Loop, attr string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(l.Path()), "loop", attr))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestAttach writes through the loop device and finds the bytes at the
// right place of the backing file, and nothing outside the range.
func TestAttach(t *testing.T) {
	harness.RequireLoopDevices(t, "loop devices")
	for _, bs := range []int{512, 4096} {
		for _, withConfigure := range []bool{true, false} {
			name := strconv.Itoa(bs) + map[bool]string{true: "/LOOP_CONFIGURE", false: "/LOOP_SET_FD"}[withConfigure]
			t.Run(name, func(t *testing.T) {
				backing := sparseFile(t, 64*mib)
				l := attachT(t, backing, 8*mib, 16*mib, bs, withConfigure)
				if !strings.HasPrefix(l.Path(), "/dev/loop") {
					t.Errorf("Path() = %q", l.Path())
				}
				dev, err := Open(l.Path(), OpenOptions{})
				if err != nil {
					t.Fatal(err)
				}
				size, ss := dev.Size(), dev.SectorSize()
				dev.Close()
				if size != 16*mib || ss != bs {
					t.Errorf("loop device: %d bytes with %d-byte sectors, want %d and %d", size, ss, 16*mib, bs)
				}
				if got := sysfsLoop(t, l, "autoclear"); got != "1" {
					t.Errorf("autoclear = %s, want 1", got)
				}
				if got := sysfsLoop(t, l, "backing_file"); got != backing {
					t.Errorf("backing_file = %s, want %s", got, backing)
				}

				f, err := os.OpenFile(l.Path(), os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				first, last := bytes.Repeat([]byte{0xA1}, bs), bytes.Repeat([]byte{0xB2}, bs)
				if _, err := f.WriteAt(first, 0); err != nil {
					t.Fatal(err)
				}
				if _, err := f.WriteAt(last, 16*mib-int64(bs)); err != nil {
					t.Fatal(err)
				}
				// The device ends exactly at the range's end.
				if n, err := f.WriteAt([]byte{1}, 16*mib); n != 0 || err == nil {
					t.Errorf("write past the end: n=%d err=%v", n, err)
				}
				f.Close()
				if err := l.Sync(); err != nil {
					t.Fatal(err)
				}

				content, err := os.ReadFile(backing)
				if err != nil {
					t.Fatal(err)
				}
				want := make([]byte, 64*mib)
				copy(want[8*mib:], first)
				copy(want[24*mib-bs:], last)
				if !bytes.Equal(content, want) {
					t.Error("backing file does not hold exactly the two written blocks at 8 MiB and 24 MiB - block size")
				}
			})
		}
	}
}

func TestAttachRefusesBadRanges(t *testing.T) {
	backing := sparseFile(t, 16*mib)
	for _, tc := range []struct {
		name         string
		path         string
		offset, size int64
		bs           int
		want         string
	}{
		{"block size not a power of two", backing, 0, mib, 1000, "power of two"},
		{"block size too small", backing, 0, mib, 256, "power of two"},
		{"offset not aligned", backing, 512, mib, 4096, "multiples of the block size"},
		{"size not aligned", backing, 0, mib + 512, 4096, "multiples of the block size"},
		{"empty", backing, 0, 0, 512, "size > 0"},
		{"beyond the end", backing, 8 * mib, 9 * mib, 512, "beyond the backing size of 16777216"},
		{"missing backing", filepath.Join(t.TempDir(), "nope"), 0, mib, 512, "no such file"},
		{"directory", t.TempDir(), 0, mib, 512, "is a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := AttachLoop(tc.path, tc.offset, tc.size, tc.bs)
			if err == nil {
				l.Detach()
				t.Fatal("Attach succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func hashRange(t *testing.T, path string, off, n int64) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, off, n)); err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// TestFormatNextToMountedPartition is sprout's real use: a disk with a
// mounted partition, and mkfs.ext4 on a loop device over free space of the
// same disk.
func TestFormatNextToMountedPartition(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		t.Run(strconv.Itoa(ss), func(t *testing.T) {
			harness.RequireTools(t, "mkfs.ext4")
			harness.RequireTools(t, "e2fsck")
			ld := blockdevtest.NewLoopDisk(t, blockdevtest.LoopOptions{Size: 256 * mib, SectorSize: ss})
			dev, err := Open(ld.Path, OpenOptions{Write: true, Flock: ExclusiveFlock})
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			if err := dev.AddPartition(1, mib, 64*mib); err != nil {
				t.Fatal(err)
			}
			p1 := PartitionNode(ld.Path, 1)
			blockdevtest.Run(t, "mkfs.ext4", "-q", "-F", p1)
			mnt := blockdevtest.Mount(t, p1, "ext4")
			if err := os.WriteFile(filepath.Join(mnt, "keep"), []byte("data"), 0o600); err != nil {
				t.Fatal(err)
			}

			// What must stay untouched: the gap after p1 and the space after the new range.
			gapBefore := hashRange(t, ld.Path, 65*mib, 35*mib)
			tailBefore := hashRange(t, ld.Path, 164*mib, 92*mib)

			l, err := AttachLoop(ld.Path, 100*mib, 64*mib, ss)
			if err != nil {
				t.Fatalf("attach over a disk with a mounted partition: %v", err)
			}
			blockdevtest.Run(t, "mkfs.ext4", "-q", "-F", l.Path())
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			if err := l.Detach(); err != nil {
				t.Fatal(err)
			}

			if hashRange(t, ld.Path, 65*mib, 35*mib) != gapBefore || hashRange(t, ld.Path, 164*mib, 92*mib) != tailBefore {
				t.Error("mkfs through the loop device wrote outside [100 MiB, 164 MiB)")
			}
			// Check the file system where the future partition will be.
			check := attachT(t, ld.Path, 100*mib, 64*mib, ss, true)
			blockdevtest.Run(t, "e2fsck", "-fn", check.Path())
			out := blockdevtest.Run(t, "dumpe2fs", "-h", check.Path())
			if blocks, size := dumpe2fsField(t, out, "Block count"), dumpe2fsField(t, out, "Block size"); blocks*size != 64*mib {
				t.Errorf("file system spans %d blocks of %d bytes, want 64 MiB", blocks, size)
			}
			if got, err := os.ReadFile(filepath.Join(mnt, "keep")); err != nil || string(got) != "data" {
				t.Errorf("mounted partition: %q, %v", got, err)
			}
		})
	}
}

func dumpe2fsField(t *testing.T, out, name string) int64 {
	t.Helper()
	for line := range strings.SplitSeq(out, "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("dumpe2fs output lacks %q", name)
	return 0
}

func TestDetachWaitsForOtherOpeners(t *testing.T) {
	harness.RequireLoopDevices(t, "loop devices")
	l := attachT(t, sparseFile(t, 16*mib), 0, 8*mib, 512, true)
	other, err := os.Open(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		other.Close()
	}()
	begin := time.Now()
	if err := l.Detach(); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(begin); elapsed < 300*time.Millisecond {
		t.Errorf("Detach returned after %s, while another opener still held the device", elapsed)
	}
	if _, err := os.Stat(filepath.Join("/sys/block", filepath.Base(l.Path()), "loop")); err == nil && !l.detached() {
		t.Error("loop device still bound after Detach")
	}
	if err := l.Detach(); err != nil {
		t.Errorf("second Detach: %v", err)
	}
}

func TestDetachFailsWhileHeld(t *testing.T) {
	harness.RequireLoopDevices(t, "loop devices")
	l, err := AttachLoop(sparseFile(t, 16*mib), 0, 8*mib, 512)
	if err != nil {
		t.Fatal(err)
	}
	other, err := os.Open(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	// Closing the last opener lets autoclear detach it after the test.
	t.Cleanup(func() { other.Close() })
	l.detachTimeout = 500 * time.Millisecond
	if err := l.Detach(); err == nil || !strings.Contains(err.Error(), "still attached") {
		t.Errorf("Detach while held = %v, want a still-attached error", err)
	}
}

func TestAttachHoldsLock(t *testing.T) {
	harness.RequireLoopDevices(t, "loop devices")
	l := attachT(t, sparseFile(t, 16*mib), 0, 8*mib, 512, true)
	f, err := os.Open(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err == nil {
		t.Error("a shared lock on the loop device succeeded; want LOCK_EX held so udev keeps away")
	}
}

// TestAttachConcurrently races several Attach calls for free devices.
func TestAttachConcurrently(t *testing.T) {
	harness.RequireLoopDevices(t, "loop devices")
	backing := sparseFile(t, 64*mib)
	const n = 4
	loops := make([]*Loop, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { loops[i], errs[i] = AttachLoop(backing, int64(i)*8*mib, 8*mib, 512) })
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Errorf("attach %d: %v", i, errs[i])
			continue
		}
		if seen[loops[i].Path()] {
			t.Errorf("%s handed out twice", loops[i].Path())
		}
		seen[loops[i].Path()] = true
		if got := sysfsLoop(t, loops[i], "offset"); got != strconv.Itoa(i*8*mib) {
			t.Errorf("%s: offset %s, want %d", loops[i].Path(), got, i*8*mib)
		}
	}
	for i := range n {
		if loops[i] != nil {
			if err := loops[i].Detach(); err != nil {
				t.Error(err)
			}
		}
	}
}
