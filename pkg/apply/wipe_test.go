package apply_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"

	"github.com/sprout-initrd/sprout/pkg/plan"
)

// A new partition without Format= must not show up carrying what the
// space held before (an old file system that systemd would then mount as
// /var): like systemd-repart, sprout wipes the signatures in every new
// partition's range before the table entry exists, formatted or not.
func TestNewPartitionWithoutFormatIsWipedBeforeItsEntryIsWritten(t *testing.T) {
	path := seedImage(t)
	defs := loadDefinitions(t, map[string]string{
		"home.conf": "[Partition]\nType=home\nFormat=ext4\nWeight=2000\n",
		"var.conf":  "[Partition]\nType=var\nWeight=1000\n", // no Format=
	})
	p, _ := planFor(t, path, defs)
	var varStart int64
	for _, s := range p.Steps {
		if a, ok := s.(plan.AddEntry); ok && a.Entry.Name == "var" {
			varStart = int64(a.Entry.FirstLBA) * int64(p.SectorSize)
		}
	}
	if varStart == 0 {
		t.Fatalf("no new var partition planned: %v", p.Steps)
	}
	// What a previous installation left there: an ext4 superblock (magic
	// 0xEF53 at byte 0x38 of the superblock, which starts at byte 1024).
	old := make([]byte, 4096)
	copy(old[1024:], bytes.Repeat([]byte("old data"), 8))
	binary.LittleEndian.PutUint16(old[1024+0x38:], 0xEF53)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(old, varStart); err != nil {
		t.Fatal(err)
	}
	f.Close()

	r, err := run(t, path, p, -1)
	if err != nil {
		t.Fatal(err)
	}

	f, err = os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, len(old))
	if _, err := f.ReadAt(got, varStart); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, make([]byte, len(old))) {
		t.Errorf("the old ext4 superblock is still at the start of the new var partition")
	}
	// And the wipe happened before the new table was written: before the
	// last write of the primary header (an earlier table write only moves
	// the backup GPT of the grown disk).
	newTable := -1
	for i, e := range r.events {
		if e.kind == "write" && e.off == 512 {
			newTable = i
		}
	}
	wiped := false
	for _, e := range r.events[:max(newTable, 0)] {
		// An image file is zeroed with a punched hole, as production does.
		wiped = wiped || e.kind == "zero" && e.off <= varStart+1024 && varStart+1024+0x3a <= e.off+e.size
	}
	if !wiped {
		t.Errorf("no zeroing of var's old superblock before the table write: %v", r.events)
	}
}
