package fstype

import (
	"bytes"
	"slices"
	"testing"

	"github.com/google/uuid"
)

func TestXfsArgs(t *testing.T) {
	f, _ := Lookup("xfs")
	id := "262afe25-c985-4002-86e6-146a18a7febd"
	want := []string{"mkfs.xfs", "-q", "-L", "héllo wörl", "-m", "uuid=" + id, "-m", "reflink=1", "/dev/loop7", "-K"}
	if got := f.Args(request("xfs"), "/dev/loop7"); !slices.Equal(got, want) {
		t.Errorf("xfs:\n got %q\nwant %q", got, want)
	}
	if f.InPlaceArgs != nil {
		t.Error("mkfs.xfs takes no offset, yet xfs has in-place arguments")
	}
}

func TestIdentifyXfs(t *testing.T) {
	id := uuid.MustParse("11111111-2222-4333-8444-555555555555")
	b := make([]byte, 8192)
	copy(b, "XFSB")
	copy(b[32:], id[:])
	copy(b[108:], "var")
	got, ok := Identify(bytes.NewReader(b))
	if want := (Identity{"xfs", "var", id.String()}); !ok || got != want {
		t.Errorf("Identify(xfs superblock) = %+v, %v; want %+v", got, ok, want)
	}
}
