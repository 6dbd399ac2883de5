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
// table of a grown disk, the relocated one (sfdisk --relocate), the new
// one (relocated, one partition more), and the states between them that
// a crash can and cannot leave.
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
	relocated := filepath.Join(dir, "relocated.img")
	newImg := filepath.Join(dir, "new.img")
	fourth := filepath.Join(dir, "fourth.img")
	for _, p := range []string{relocated, newImg, fourth} {
		if err := harness.CopySparse(old, p); err != nil {
			t.Fatal(err)
		}
		if err := harness.Relocate(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	sfdisk(newImg, "size=32MiB, name=b\n", "--append")
	sfdisk(fourth, "size=8MiB, name=c\n", "--append")

	oldBackup := uint64(64<<20/ss - 1)
	read := func(img string) *diskGPT {
		t.Helper()
		d, err := readDiskGPT(img, ss, oldBackup)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	k := knownTables{Old: read(old), Relocated: read(relocated), New: read(newImg)}
	if !k.Old.Primary.Intact() || !k.Old.Other.Intact() || !k.Relocated.Primary.Intact() || !k.Relocated.AtEnd.Intact() ||
		!k.New.Primary.Intact() || !k.New.AtEnd.Intact() {
		t.Fatalf("fixtures: %+v / %+v / %+v", k.Old, k.Relocated, k.New)
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
	// The relocation's writes, in sprout's order, then the new table's.
	relocBackupArray := patch{relocated, last - 32, last - 1}
	relocBackup := patch{relocated, last - 32, last}
	relocPrimary := patch{relocated, 1, 33}
	relocMBR := patch{relocated, 0, 0}
	oldBackupWiped := patch{blank, int64(oldBackup) - 32, int64(oldBackup)}
	newBackup := patch{newImg, last - 32, last}
	newPrimaryArray := patch{newImg, 2, 33}
	newPrimary := patch{newImg, 1, 33}
	newMBR := patch{newImg, 0, 0}
	relocatedAll := []patch{relocBackup, relocPrimary, relocMBR}
	with := func(ps []patch, more ...patch) []patch { return append(append([]patch(nil), ps...), more...) }
	const (
		noTable   = "find no table"
		fourthOne = "neither the old, the relocated nor the new"
		oneCopy   = "old backup GPT at LBA"
		badMBR    = "protective MBR"
	)
	for _, c := range []struct {
		name, img, reads, violation string
	}{
		{"old", old, "old", ""},
		{"relocated", relocated, "relocated", ""},
		{"new", newImg, "new", ""},
		{"relocated backup array written", crash("ra", relocBackupArray), "old", ""},
		{"relocated backup written", crash("rb", relocBackup), "old", ""},
		{"relocated backup and primary written", crash("rp", relocBackup, relocPrimary), "relocated", ""},
		{"relocated, old backup wiped by a new partition's wipe", crash("rw", with(relocatedAll, oldBackupWiped)...), "relocated", ""},
		{"relocated backup written, old backup wiped", crash("rbw", relocBackup, oldBackupWiped), "old", ""},
		{"new backup written", crash("nb", with(relocatedAll, oldBackupWiped, newBackup)...), "relocated", ""},
		{"new primary array torn", crash("npa", with(relocatedAll, oldBackupWiped, newBackup, newPrimaryArray)...), "new", ""},
		{"new primary written", crash("np", with(relocatedAll, oldBackupWiped, newBackup, newPrimary)...), "new", ""},
		{"new primary and MBR written", crash("nm", with(relocatedAll, oldBackupWiped, newBackup, newPrimary, newMBR)...), "new", ""},
		{"new table over the old one, not relocated first", crash("nr", newBackup, newPrimary, newMBR), "new", ""},
		{"old backup wiped before the relocation", crash("w", oldBackupWiped), "old", oneCopy},
		{"old backup wiped, relocated backup array written", crash("wa", oldBackupWiped, relocBackupArray), "old", oneCopy},
		{"old backup wiped, relocated MBR written", crash("wm", oldBackupWiped, relocMBR), "old", oneCopy},
		{"new primary array before the backup", crash("pb", newPrimaryArray), "", noTable},
		{"new primary array before the backup, old backup wiped", crash("pbw", oldBackupWiped, newPrimaryArray), "", noTable},
		{"a fourth table", crash("c", with(relocatedAll, patch{fourth, 1, 33})...), "", fourthOne},
		{"a fourth table in the last LBA", crash("x", patch{fourth, last - 32, last}), "old", fourthOne},
		{"no protective MBR", crash("m", with(relocatedAll, patch{blank, 0, 0})...), "relocated", badMBR},
	} {
		v := k.judge(read(c.img))
		if v.Effective != c.reads || (c.violation == "") != (len(v.Violations) == 0) ||
			(c.violation != "" && !strings.Contains(strings.Join(v.Violations, "; "), c.violation)) {
			t.Errorf("%s: reads %q, violations %q; want reads %q, violation %q (%s)", c.name, v.Effective, v.Violations, c.reads, c.violation, v.State)
		}
	}
}
