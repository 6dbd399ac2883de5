package blockdev

import (
	"bytes"
	"os"
	"testing"

	"github.com/sprout-initrd/sprout/pkg/blockdev/blockdevtest"
)

// checkZeroRange fills a device with 0xAA, zeroes [3 MiB, 5 MiB) and checks
// that exactly that range reads back as zeros.
func checkZeroRange(t *testing.T, dev *Handle) {
	t.Helper()
	if _, err := dev.WriteAt(fill(0xAA, 8*mib), 0); err != nil {
		t.Fatal(err)
	}
	if err := dev.ZeroRange(3*mib, 2*mib); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 8*mib)
	if _, err := dev.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	want := fill(0xAA, 8*mib)
	copy(want[3*mib:5*mib], make([]byte, 2*mib))
	if !bytes.Equal(got, want) {
		i := 0
		for got[i] == want[i] {
			i++
		}
		t.Fatalf("after ZeroRange(3 MiB, 2 MiB): first difference at byte %d (got %#x, want %#x)", i, got[i], want[i])
	}
	if err := dev.ZeroRange(dev.Size()-mib, 2*mib); err == nil {
		t.Error("ZeroRange past the end succeeded")
	}
}

func TestZeroRangeFilePunchesHole(t *testing.T) {
	path := sparseFile(t, 16*mib)
	dev := openT(t, path, OpenOptions{Write: true})
	checkZeroRange(t, dev)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// The zeroed range is a hole: the image stays sparse.
	if off, err := f.Seek(3*mib, 4 /* SEEK_HOLE */); err != nil || off != 3*mib {
		t.Errorf("SEEK_HOLE from 3 MiB = %d, %v; want a hole at 3 MiB", off, err)
	}
	ro := openT(t, path, OpenOptions{})
	if err := ro.ZeroRange(0, mib); err == nil {
		t.Error("ZeroRange on a read-only open succeeded")
	}
}

func TestZeroRangeBlockDevice(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		l := blockdevtest.NewLoopDisk(t, blockdevtest.LoopOptions{Size: 16 * mib, SectorSize: ss})
		checkZeroRange(t, openT(t, l.Path, OpenOptions{Write: true}))
	}
}
