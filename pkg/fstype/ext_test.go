package fstype

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/google/uuid"
)

// The command lines are 252's options with --discard=no (the
// differential tier compares the file systems they make with 252's);
// these pin them.
func TestExtArgs(t *testing.T) {
	id := "262afe25-c985-4002-86e6-146a18a7febd"
	for _, c := range []struct {
		format string
		want   []string
	}{
		{"ext2", []string{"mkfs.ext2", "-q", "-L", "héllo wörld an", "-U", id, "-I", "256", "-m", "0", "-E", "nodiscard,lazy_itable_init=1", "-T", "default", "/dev/loop7"}},
		{"ext3", []string{"mkfs.ext3", "-q", "-L", "héllo wörld an", "-U", id, "-I", "256", "-O", "has_journal", "-m", "0", "-E", "nodiscard,lazy_itable_init=1", "-T", "default", "/dev/loop7"}},
		{"ext4", []string{"mkfs.ext4", "-q", "-L", "héllo wörld an", "-U", id, "-I", "256", "-O", "has_journal", "-m", "0", "-E", "nodiscard,lazy_itable_init=1", "-T", "default", "/dev/loop7"}},
	} {
		f, _ := Lookup(c.format)
		if got := f.Args(request(c.format), "/dev/loop7"); !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.format, got, c.want)
		}
	}
	f, _ := Lookup("ext4")
	want := []string{"mkfs.ext4", "-q", "-L", "héllo wörld an", "-U", id, "-I", "256", "-O", "has_journal", "-m", "0",
		"-E", "nodiscard,lazy_itable_init=1,offset=1048576", "-T", "default", "-F", "/img", "65536k"}
	if got := f.InPlaceArgs(request("ext4"), "/img", 1<<20, 64<<20); !slices.Equal(got, want) {
		t.Errorf("ext4 in place:\n got %q\nwant %q", got, want)
	}
	if got := extLabel("0123456789abcdeé"); got != "0123456789abcde" {
		t.Errorf("extLabel keeps %q: a character split at byte 16", got)
	}
}

func TestIdentifyExt(t *testing.T) {
	id := uuid.MustParse("11111111-2222-4333-8444-555555555555")
	b := make([]byte, 8192)
	binary.LittleEndian.PutUint16(b[1024+56:], 0xEF53)
	copy(b[1024+104:], id[:])
	copy(b[1024+120:], "home")
	got, ok := Identify(bytes.NewReader(b))
	if want := (Identity{"ext4", "home", id.String()}); !ok || got != want {
		t.Errorf("Identify(ext superblock) = %+v, %v; want %+v", got, ok, want)
	}
}
