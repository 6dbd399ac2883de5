package crash

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// TestJudge checks the validity rules on disks built with sfdisk: the old
// table of a grown disk, the new one (relocated, one partition more), and
// the states between them that a crash can and cannot leave.
func TestJudge(t *testing.T) {
	harness.RequireTools(t, "sfdisk")
	ctx := context.Background()
	dir := t.TempDir()
	const ss = 512
	sfdisk := func(img, script string, args ...string) {
		t.Helper()
		argv := append([]string{"sfdisk", "-q", "--no-reread", "--no-tell-kernel"}, args...)
		res, err := harness.RunInput(ctx, []byte(script), append(argv, img)...)
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("%v: %v %s", argv, err, res.Stderr)
		}
	}
	old := filepath.Join(dir, "old.img")
	if err := harness.CreateSparse(old, 64<<20); err != nil {
		t.Fatal(err)
	}
	sfdisk(old, "label: gpt\nsize=16MiB, name=a\n")
	if err := harness.Resize(old, 128<<20); err != nil {
		t.Fatal(err)
	}
	newImg := filepath.Join(dir, "new.img")
	third := filepath.Join(dir, "third.img")
	for _, p := range []string{newImg, third} {
		if err := harness.CopySparse(old, p); err != nil {
			t.Fatal(err)
		}
		if err := harness.Relocate(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	sfdisk(newImg, "size=32MiB, name=b\n", "--append")
	sfdisk(third, "size=8MiB, name=c\n", "--append")

	oldBackup := uint64(64<<20/ss - 1)
	read := func(img string) *diskGPT {
		t.Helper()
		d, err := readDiskGPT(img, ss, oldBackup)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	k := knownTables{Old: read(old), New: read(newImg)}
	if !k.Old.Primary.intact() || !k.Old.Other.intact() || !k.New.Primary.intact() || !k.New.AtEnd.intact() {
		t.Fatalf("fixtures: %+v / %+v", k.Old, k.New)
	}
	blank := filepath.Join(dir, "blank.img")
	if err := harness.CreateSparse(blank, 128<<20); err != nil {
		t.Fatal(err)
	}
	// crash builds a disk from the old one with sectors copied from
	// others: each patch is a source image and an LBA range.
	type patch struct {
		from     string
		lba, end int64 // inclusive
	}
	crash := func(name string, patches ...patch) string {
		t.Helper()
		img := filepath.Join(dir, name+".img")
		if err := harness.CopySparse(old, img); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(img, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range patches {
			src, err := os.ReadFile(p.from)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(src[p.lba*ss:(p.end+1)*ss], p.lba*ss); err != nil {
				t.Fatal(err)
			}
		}
		return img
	}
	last := int64(128<<20/ss - 1)
	newBackup := patch{newImg, last - 32, last}
	newPrimaryArray := patch{newImg, 2, 33}
	newPrimary := patch{newImg, 1, 33}
	oldBackupWiped := patch{blank, int64(oldBackup) - 32, int64(oldBackup)}
	for _, c := range []struct {
		name, img, reads, violation string
	}{
		{"old", old, "old", ""},
		{"new", newImg, "new", ""},
		{"old, its backup wiped by a new partition's wipe", crash("w", oldBackupWiped), "old", ""},
		{"new backup written", crash("b", oldBackupWiped, newBackup), "old", ""},
		{"primary array torn", crash("pa", oldBackupWiped, newBackup, newPrimaryArray), "new", ""},
		{"primary written", crash("p", oldBackupWiped, newBackup, newPrimary), "new", ""},
		{"primary array before the backup", crash("pb", newPrimaryArray), "", "no table"},
		{"primary array before the backup, old backup wiped", crash("pbw", oldBackupWiped, newPrimaryArray), "", "no table"},
		{"a third table", crash("c", patch{third, 1, 33}), "", "neither the old nor the new"},
		{"a third table in the last LBA", crash("x", patch{third, last - 32, last}), "old", "neither the old nor the new"},
	} {
		v := k.judge(read(c.img))
		if v.Effective != c.reads || (c.violation == "") != (len(v.Violations) == 0) ||
			(c.violation != "" && !strings.Contains(strings.Join(v.Violations, "; "), strings.ReplaceAll(c.violation, "no table", "find no table"))) {
			t.Errorf("%s: reads %q, violations %q; want reads %q, violation %q (%s)", c.name, v.Effective, v.Violations, c.reads, c.violation, v.State)
		}
	}
}
