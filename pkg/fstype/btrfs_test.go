package fstype

import (
	"bytes"
	"slices"
	"testing"

	"github.com/google/uuid"
)

func TestBtrfsArgs(t *testing.T) {
	f, _ := Lookup("btrfs")
	id := "262afe25-c985-4002-86e6-146a18a7febd"
	want := []string{"mkfs.btrfs", "-q", "-L", "héllo wörld and a long label", "-U", id, "/dev/loop7", "--nodiscard"}
	if got := f.Args(request("btrfs"), "/dev/loop7"); !slices.Equal(got, want) {
		t.Errorf("btrfs:\n got %q\nwant %q", got, want)
	}
}

func TestIdentifyBtrfs(t *testing.T) {
	id := uuid.MustParse("11111111-2222-4333-8444-555555555555")
	b := make([]byte, superblockSpan)
	copy(b[65536+64:], "_BHRfS_M")
	copy(b[65536+32:], id[:])
	copy(b[65536+299:], "data")
	got, ok := Identify(bytes.NewReader(b))
	if want := (Identity{"btrfs", "data", id.String()}); !ok || got != want {
		t.Errorf("Identify(btrfs superblock) = %+v, %v; want %+v", got, ok, want)
	}
	// A device shorter than the superblock's place holds no btrfs.
	if _, ok := Identify(bytes.NewReader(b[:65536])); ok {
		t.Error("Identify found a file system in 64 KiB of zeros")
	}
}
