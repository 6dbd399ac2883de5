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
	// 257 and later: 4096-byte sectors in an image file.
	req := request("vfat")
	req.SectorSize = 4096
	want = []string{"mkfs.vfat", "-i", "262afe25", "-n", "H_LLO W_RLD", "-F", "32", "-S", "4096", "/dev/loop7"}
	if got := f.Args(req, "/dev/loop7"); !slices.Equal(got, want) {
		t.Errorf("vfat with 4096-byte sectors:\n got %q\nwant %q", got, want)
	}
	// Never in place: mkfs.fat takes the geometry of the file, not of the
	// range (cluster size, sector count), so it formats a loop device.
	if f.InPlaceArgs != nil {
		t.Error("vfat formats image files in place; 252 to 262 format a loop device over the range")
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
