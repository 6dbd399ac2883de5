package blockdev

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sprout-initrd/sprout/pkg/blockdev/blockdevtest"
	"github.com/sprout-initrd/sprout/tests/harness"
	"golang.org/x/sys/unix"
)

const mib = 1 << 20

func openT(t *testing.T, path string, opts OpenOptions) *Handle {
	t.Helper()
	dev, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	return dev
}

func sparseFile(t *testing.T, size int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "image.raw")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	return path
}

func accessMode(t *testing.T, dev *Handle) int {
	t.Helper()
	fl, err := unix.FcntlInt(uintptr(dev.fd), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fl & unix.O_ACCMODE
}

func TestOpenRegularFile(t *testing.T) {
	path := sparseFile(t, 8*mib)
	link := filepath.Join(t.TempDir(), "by-id-link")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	dev := openT(t, link, OpenOptions{Write: true})
	if dev.Path() != path {
		t.Errorf("Path() = %q, want the resolved %q", dev.Path(), path)
	}
	if dev.Size() != 8*mib || dev.SectorSize() != 512 || dev.PhysicalSectorSize() != 512 || dev.IsBlockDevice() {
		t.Errorf("got size %d, sector %d, physical %d, block %v; want %d, 512, 512, false",
			dev.Size(), dev.SectorSize(), dev.PhysicalSectorSize(), dev.IsBlockDevice(), 8*mib)
	}
	if _, err := dev.WriteAt([]byte("sprout"), 4096); err != nil {
		t.Fatal(err)
	}
	if err := dev.Sync(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 6)
	if _, err := dev.ReadAt(got, 4096); err != nil || string(got) != "sprout" {
		t.Fatalf("ReadAt = %q, %v", got, err)
	}

	// Kernel-side operations are no-ops on image files.
	if parts, err := dev.Partitions(); err != nil || parts != nil {
		t.Errorf("KernelPartitions = %v, %v; want nil, nil", parts, err)
	}
	if err := dev.AddPartition(1, mib, mib); err != nil {
		t.Errorf("AddPartition: %v", err)
	}
	if changed, err := SyncKernel(dev, []WantPartition{{1, mib, mib}}); err != nil || changed != nil {
		t.Errorf("SyncKernel = %v, %v; want nil, nil", changed, err)
	}
	if inUse, err := dev.PartitionInUse(1); err != nil || inUse {
		t.Errorf("PartitionInUse = %v, %v; want false, nil", inUse, err)
	}
}

func TestOpenReadOnlyByDefault(t *testing.T) {
	path := sparseFile(t, mib)
	dev := openT(t, path, OpenOptions{})
	if m := accessMode(t, dev); m != unix.O_RDONLY {
		t.Errorf("access mode %#o, want O_RDONLY: a run that changes nothing must not open for writing", m)
	}
	if _, err := dev.WriteAt([]byte{1}, 0); err == nil {
		t.Error("WriteAt on a read-only open succeeded")
	}
	if err := dev.Discard(0, 4096); err == nil {
		t.Error("Discard on a read-only open succeeded")
	}
	rw := openT(t, path, OpenOptions{Write: true})
	if m := accessMode(t, rw); m != unix.O_RDWR {
		t.Errorf("access mode %#o with Write, want O_RDWR", m)
	}
}

func TestOpenRefusesNonDisks(t *testing.T) {
	for _, tc := range []struct{ name, path, want string }{
		{"directory", t.TempDir(), "neither a block device nor a regular file"},
		{"char device", "/dev/null", "neither a block device nor a regular file"},
		{"missing", filepath.Join(t.TempDir(), "nope"), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev, err := Open(tc.path, OpenOptions{})
			if err == nil {
				dev.Close()
				t.Fatalf("Open(%s) succeeded", tc.path)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open(%s) = %v, want it to mention %q", tc.path, err, tc.want)
			}
		})
	}
}

// lockHeld reports whether another open file description cannot take the
// given flock on path.
func lockHeld(t *testing.T, path string, how int) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
	if err != nil && !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatal(err)
	}
	return err != nil
}

func testLocking(t *testing.T, path string) {
	dev, err := Open(path, OpenOptions{Write: true, Flock: ExclusiveFlock})
	if err != nil {
		t.Fatal(err)
	}
	if !lockHeld(t, path, unix.LOCK_EX) || !lockHeld(t, path, unix.LOCK_SH) {
		t.Error("Write+Lock: another open file could still take a lock; want LOCK_EX held")
	}
	if _, err := Open(path, OpenOptions{Flock: SharedFlock, LockTimeout: 200 * time.Millisecond}); err == nil {
		t.Error("a second locking Open succeeded while LOCK_EX was held")
	} else if !errors.Is(err, unix.EWOULDBLOCK) {
		t.Errorf("second locking Open: %v, want EWOULDBLOCK", err)
	}
	dev.Close()
	if lockHeld(t, path, unix.LOCK_EX) {
		t.Error("lock still held after Close")
	}

	shared := openT(t, path, OpenOptions{Flock: SharedFlock})
	if lockHeld(t, path, unix.LOCK_SH) {
		t.Error("read-only Lock blocks another shared lock; want LOCK_SH")
	}
	if !lockHeld(t, path, unix.LOCK_EX) {
		t.Error("read-only Lock does not block LOCK_EX; want LOCK_SH held")
	}
	shared.Close()

	unlocked := openT(t, path, OpenOptions{Write: true})
	if lockHeld(t, path, unix.LOCK_EX) {
		t.Error("Open without Lock took a lock")
	}
	unlocked.Close()
}

func TestLockFile(t *testing.T) { testLocking(t, sparseFile(t, mib)) }

func TestLockBlockDevice(t *testing.T) {
	l := blockdevtest.NewLoopDisk(t, blockdevtest.LoopOptions{Size: 16 * mib})
	testLocking(t, l.Path)
}

func TestOpenBlockDevice(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		t.Run(strconv.Itoa(ss), func(t *testing.T) {
			l := blockdevtest.NewLoopDisk(t, blockdevtest.LoopOptions{Size: 48 * mib, SectorSize: ss})
			dev := openT(t, l.Path, OpenOptions{Write: true, Flock: ExclusiveFlock})
			if !dev.IsBlockDevice() || dev.Path() != l.Path {
				t.Errorf("IsBlockDevice %v, Path %q; want true, %q", dev.IsBlockDevice(), dev.Path(), l.Path)
			}
			if dev.Size() != 48*mib {
				t.Errorf("Size() = %d, want %d", dev.Size(), 48*mib)
			}
			if dev.SectorSize() != ss {
				t.Errorf("SectorSize() = %d, want %d", dev.SectorSize(), ss)
			}
			sysPhys := blockdevtest.Run(t, "cat", "/sys/class/block/"+filepath.Base(l.Path)+"/queue/physical_block_size")
			if strconv.Itoa(dev.PhysicalSectorSize()) != strings.TrimSpace(sysPhys) {
				t.Errorf("PhysicalSectorSize() = %d, sysfs says %s", dev.PhysicalSectorSize(), sysPhys)
			}
			if m := accessMode(t, dev); m != unix.O_RDWR {
				t.Errorf("access mode %#o, want O_RDWR", m)
			}
			// Written data reaches the backing file at the same offset.
			if _, err := dev.WriteAt([]byte("sprout"), 3*mib); err != nil {
				t.Fatal(err)
			}
			if err := dev.Sync(); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 6)
			f, err := os.Open(l.Backing)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.ReadAt(got, 3*mib); err != nil || string(got) != "sprout" {
				t.Errorf("backing file at 3 MiB = %q, %v", got, err)
			}
		})
	}
}

// closeWrites counts the IN_CLOSE_WRITE inotify events on path while fn
// runs; udev's watch on a disk reacts to exactly these.
func closeWrites(t *testing.T, path string, fn func()) int {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_CLOSE_WRITE); err != nil {
		t.Fatal(err)
	}
	fn()
	buf := make([]byte, 4096)
	n, err := unix.Read(fd, buf)
	if errors.Is(err, unix.EAGAIN) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return n / unix.SizeofInotifyEvent
}

// TestReadOnlyOpenKeepsUdevQuiet: a run that changes nothing must not make
// udev re-probe the disk.
func TestReadOnlyOpenKeepsUdevQuiet(t *testing.T) {
	l := blockdevtest.NewLoopDisk(t, blockdevtest.LoopOptions{Size: 16 * mib})
	openClose := func(opts OpenOptions) func() {
		return func() {
			dev, err := Open(l.Path, opts)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4096)
			if _, err := dev.ReadAt(buf, 0); err != nil {
				t.Fatal(err)
			}
			dev.Close()
		}
	}
	if n := closeWrites(t, l.Path, openClose(OpenOptions{Flock: SharedFlock})); n != 0 {
		t.Errorf("read-only Open/Close caused %d IN_CLOSE_WRITE events, want 0", n)
	}
	if n := closeWrites(t, l.Path, openClose(OpenOptions{Write: true, Flock: ExclusiveFlock})); n != 1 {
		t.Errorf("control: write Open/Close caused %d IN_CLOSE_WRITE events, want 1", n)
	}
}

func TestOpenReadOnlyDevice(t *testing.T) {
	l := blockdevtest.NewLoopDisk(t, blockdevtest.LoopOptions{Size: 16 * mib, ReadOnly: true})
	var err error
	if n := closeWrites(t, l.Path, func() { _, err = Open(l.Path, OpenOptions{Write: true}) }); n != 0 {
		t.Errorf("refusing a read-only device opened it for writing (%d IN_CLOSE_WRITE events)", n)
	}
	if !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Open(write) on read-only device = %v, want ErrReadOnly", err)
	}
	if !strings.Contains(err.Error(), l.Path) {
		t.Errorf("error %q does not name %s", err, l.Path)
	}
	dev := openT(t, l.Path, OpenOptions{})
	if dev.Size() != 16*mib {
		t.Errorf("read-only open: Size() = %d", dev.Size())
	}
}

func TestOpenRefusesPartition(t *testing.T) {
	l := blockdevtest.NewLoopDisk(t, blockdevtest.LoopOptions{Size: 16 * mib})
	dev := openT(t, l.Path, OpenOptions{Write: true})
	if err := dev.AddPartition(2, mib, 4*mib); err != nil {
		t.Fatal(err)
	}
	node := PartitionNode(l.Path, 2)
	_, err := Open(node, OpenOptions{})
	want := node + " is partition 2 of " + l.Path + "; pass the whole disk"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open(%s) = %v, want an error containing %q", node, err, want)
	}
	// The same through a symlink, as with /dev/disk/by-partlabel/….
	link := filepath.Join(t.TempDir(), "by-partlabel")
	if err := os.Symlink(node, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(link, OpenOptions{}); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open(%s) = %v, want an error containing %q", link, err, want)
	}
}

func TestDiskForPartition(t *testing.T) {
	l := blockdevtest.NewLoopDisk(t, blockdevtest.LoopOptions{Size: 16 * mib})
	dev := openT(t, l.Path, OpenOptions{Write: true})
	if err := dev.AddPartition(3, 2*mib, 2*mib); err != nil {
		t.Fatal(err)
	}
	diskPath, n, err := SystemPaths().DiskForPartition(PartitionNode(l.Path, 3))
	if err != nil || diskPath != l.Path || n != 3 {
		t.Errorf("DiskForPartition = %q, %d, %v; want %q, 3, nil", diskPath, n, err, l.Path)
	}
	if _, _, err := SystemPaths().DiskForPartition(l.Path); !errors.Is(err, ErrNotPartition) {
		t.Errorf("DiskForPartition(whole disk) = %v, want ErrNotPartition", err)
	}
	if _, _, err := SystemPaths().DiskForPartition("/dev/null"); err == nil || errors.Is(err, ErrNotPartition) {
		t.Errorf("DiskForPartition(/dev/null) = %v, want a not-a-block-device error", err)
	}
}

func fill(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

func TestDiscardFile(t *testing.T) {
	path := sparseFile(t, 4*mib)
	dev := openT(t, path, OpenOptions{Write: true})
	if _, err := dev.WriteAt(fill(0xAA, 4*mib), 0); err != nil {
		t.Fatal(err)
	}
	if err := dev.Sync(); err != nil {
		t.Fatal(err)
	}
	err := dev.Discard(mib, 2*mib)
	if errors.Is(err, ErrDiscardUnsupported) {
		t.Skipf("file system of %s cannot punch holes: %v", path, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	fd := dev.fd
	if hole, err := unix.Seek(fd, 0, unix.SEEK_HOLE); err != nil || hole != mib {
		t.Errorf("first hole at %d (%v), want %d", hole, err, mib)
	}
	if data, err := unix.Seek(fd, mib, unix.SEEK_DATA); err != nil || data != 3*mib {
		t.Errorf("data resumes at %d (%v), want %d", data, err, 3*mib)
	}
	st, _ := os.Stat(path)
	if st.Size() != 4*mib {
		t.Errorf("file size %d after discard, want it kept at %d", st.Size(), 4*mib)
	}
	got := make([]byte, 4*mib)
	if _, err := dev.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:mib], fill(0xAA, mib)) || !bytes.Equal(got[mib:3*mib], make([]byte, 2*mib)) || !bytes.Equal(got[3*mib:], fill(0xAA, mib)) {
		t.Error("content after discard is not AA | zeros | AA")
	}
	if err := dev.Discard(3*mib, 2*mib); err == nil {
		t.Error("Discard beyond the end succeeded")
	}
}

// TestDiscardBlockDevice discards an unaligned range of a disk while
// another partition of it is mounted, as sprout does for a new partition.
func TestDiscardBlockDevice(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		t.Run(strconv.Itoa(ss), func(t *testing.T) {
			l := blockdevtest.NewLoopDisk(t, blockdevtest.LoopOptions{Size: 16 * mib, SectorSize: ss})
			dev := openT(t, l.Path, OpenOptions{Write: true, Flock: ExclusiveFlock})
			if _, err := dev.WriteAt(fill(0xAA, 8*mib), 0); err != nil {
				t.Fatal(err)
			}
			if err := dev.Sync(); err != nil {
				t.Fatal(err)
			}
			if err := dev.AddPartition(1, 8*mib, 8*mib); err != nil {
				t.Fatal(err)
			}
			harness.RequireTools(t, "mkfs.ext4")
			blockdevtest.Run(t, "mkfs.ext4", "-q", "-F", PartitionNode(l.Path, 1))
			blockdevtest.Mount(t, PartitionNode(l.Path, 1), "ext4")

			// An unaligned range: only whole sectors inside it may be discarded.
			off, length := int64(mib+100), int64(2*mib)
			err := dev.Discard(off, length)
			if errors.Is(err, ErrDiscardUnsupported) {
				t.Logf("loop device cannot discard here: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			start := int64(mib + ss)                      // rounded up
			end := (off + length) / int64(ss) * int64(ss) // rounded down
			got := make([]byte, 8*mib)
			if _, err := dev.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[start:end], make([]byte, end-start)) {
				t.Error("discarded sectors do not read back as zeros")
			}
			if !bytes.Equal(got[:start], fill(0xAA, int(start))) || !bytes.Equal(got[end:], fill(0xAA, int(8*mib-end))) {
				t.Error("discard touched bytes outside the whole sectors of the range")
			}
			// The loop driver punched the hole into the backing file.
			f, err := os.Open(l.Backing)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if hole, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_HOLE); err != nil || hole < start || hole >= end {
				t.Errorf("first hole of the backing file at %d (%v), want inside [%d, %d)", hole, err, start, end)
			}
		})
	}
}

// DiscardLimits reads the queue limits sysfs shows for the disk (a loop
// device over a file discards by punching holes); an image file has none.
func TestDiscardLimitsAreTheQueues(t *testing.T) {
	l := blockdevtest.NewLoopDisk(t, blockdevtest.LoopOptions{Size: 16 * mib})
	dev := openT(t, l.Path, OpenOptions{})
	got, err := dev.DiscardLimits()
	if err != nil {
		t.Fatal(err)
	}
	queue := "/sys/class/block/" + filepath.Base(l.Path) + "/queue/"
	max := strings.TrimSpace(blockdevtest.Run(t, "cat", queue+"discard_max_bytes"))
	gran := strings.TrimSpace(blockdevtest.Run(t, "cat", queue+"discard_granularity"))
	if strconv.FormatInt(got.MaxBytes, 10) != max || strconv.FormatInt(got.Granularity, 10) != gran || got.MaxBytes == 0 {
		t.Errorf("DiscardLimits() = %+v, sysfs says discard_max_bytes %s, discard_granularity %s", got, max, gran)
	}
	file := openT(t, sparseFile(t, mib), OpenOptions{})
	if _, err := file.DiscardLimits(); err == nil {
		t.Error("an image file has discard limits")
	}
}
