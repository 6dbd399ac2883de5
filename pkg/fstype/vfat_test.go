package fstype

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"
)

func TestVfatArgs(t *testing.T) {
	f, _ := Lookup("vfat")
	want := []string{"mkfs.vfat", "-i", "262afe25", "-n", "H_LLO W_RLD", "-F", "32", "/dev/loop7"}
	if got := f.Args(request("vfat"), "/dev/loop7"); !slices.Equal(got, want) {
		t.Errorf("vfat:\n got %q\nwant %q", got, want)
	}
	want = []string{"mkfs.vfat", "-i", "262afe25", "-n", "H_LLO W_RLD", "-F", "32", "--offset=2048", "/img", "65536"}
	if got := f.InPlaceArgs(request("vfat"), "/img", 1<<20, 64<<20); !slices.Equal(got, want) {
		t.Errorf("vfat in place:\n got %q\nwant %q", got, want)
	}
	for in, want := range map[string]string{"esp": "ESP", "a.b:c": "A_B_C", "twelve chars": "TWELVE CHAR", "": ""} {
		if got := vfatLabel(in); got != want {
			t.Errorf("vfatLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIdentifyFAT(t *testing.T) {
	fat := func(fat32 bool, label string, serial uint32) []byte {
		b := make([]byte, 4096)
		b[510], b[511] = 0x55, 0xAA
		if fat32 {
			copy(b[82:], "FAT32   ")
			binary.LittleEndian.PutUint32(b[67:], serial)
			copy(b[71:], label)
		} else {
			copy(b[54:], "FAT16   ")
			binary.LittleEndian.PutUint32(b[39:], serial)
			copy(b[43:], label)
		}
		return b
	}
	for _, c := range []struct {
		b    []byte
		want Identity
	}{
		{fat(true, "ESP        ", 0x262afe25), Identity{"vfat", "ESP", "262A-FE25"}},
		{fat(false, "BOOT       ", 0x5EED0001), Identity{"vfat", "BOOT", "5EED-0001"}},
		{fat(true, "NO NAME    ", 1), Identity{"vfat", "", "0000-0001"}},
	} {
		if got, ok := Identify(bytes.NewReader(c.b)); !ok || got != c.want {
			t.Errorf("Identify = %+v, %v; want %+v", got, ok, c.want)
		}
	}
	if got, ok := Identify(bytes.NewReader(make([]byte, 8192))); ok {
		t.Errorf("Identify(zeros) = %+v", got)
	}
}
