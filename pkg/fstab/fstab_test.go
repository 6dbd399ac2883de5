package fstab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/encryption"
	"github.com/sprout-initrd/sprout/pkg/gpt"
	"github.com/sprout-initrd/sprout/pkg/parttype"
	"github.com/sprout-initrd/sprout/pkg/plan"
	"github.com/sprout-initrd/sprout/pkg/repartd"
)

// testdata/types holds definitions of every kind of line (each partition
// type's options and pass, vfat, swap, xfs, btrfs with two mount points,
// partitions without Format= or that exist) and the fstab systemd-repart
// 262 and 257 wrote for them on a 2 GiB disk with a 100 MiB ESP and a
// 200 MiB root (testdata/features/fstab-types/base.sfdisk),
// --seed=750b6cd5c4ae4012a15e7be3c29e6a47. The features tier compares
// sprout's file with 262's on every run.
func TestFstabAsSystemdWritesIt(t *testing.T) {
	defs, err := repartd.Load(repartd.Options{Dirs: []string{"testdata/types"}, Compat: compat.Newest})
	if err != nil {
		t.Fatal(err)
	}
	const size = 2 << 30
	tb := &gpt.Table{SectorSize: 512, DiskGUID: uuid.New(), FirstUsableLBA: 2048, LastUsableLBA: size/512 - 34,
		BackupLBA: size/512 - 1, EntryCount: 128, EntrySize: 128}
	for i, e := range []struct {
		typ          string
		uuid         string
		start, count uint64
	}{
		{"esp", "a24515ce-ed61-1f44-9ff9-0079adee1ebf", 2048, 204800},
		{"root", "4258fbcf-c921-7f4d-8d23-527024c24bf0", 206848, 409600},
	} {
		g, _ := parttype.Lookup(e.typ)
		tb.Entries = append(tb.Entries, gpt.Entry{Index: i + 1, Type: g, UUID: uuid.MustParse(e.uuid),
			FirstLBA: e.start, LastLBA: e.start + e.count - 1})
	}
	p, err := plan.Make(defs, plan.Snapshot{Size: size, SectorSize: 512, Label: plan.LabelGPT, Table: tb},
		plan.Options{Seed: uuid.MustParse("750b6cd5c4ae4012a15e7be3c29e6a47")})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		compat compat.Version
		file   string
	}{{262, "fstab.262"}, {258, "fstab.262"}, {257, "fstab.257"}, {256, "fstab.257"}} {
		want, err := os.ReadFile(filepath.Join("testdata/types", c.file))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := Fstab(Partitions(p), c.compat)
		if !ok || got != string(want) {
			t.Errorf("compat %d: got\n%s\nwant (%s)\n%s", c.compat, got, c.file, want)
		}
	}
}

// Which file systems get "discard" (observed on 262 for every Format= it
// accepts on a partition that exists).
func TestDiscardByFormat(t *testing.T) {
	with := []string{"btrfs", "ext2", "ext3", "ext4", "f2fs", "vfat", "xfs"}
	without := []string{"swap", "squashfs", "erofs", "cramfs", "iso9660", "exfat", "ntfs", "ntfs3", "fat", "msdos", "udf", "minix", "jfs", "nilfs2", "bcachefs", "hfsplus", "bogus"}
	for _, f := range with {
		if discard(f) != "discard," {
			t.Errorf("%s: no discard", f)
		}
	}
	for _, f := range without {
		if discard(f) != "" {
			t.Errorf("%s: discard", f)
		}
	}
}

func TestFstabNothingToWrite(t *testing.T) {
	d := repartd.Definition{Format: "", MountPoints: []repartd.MountPoint{{Path: "/x"}}}
	if _, ok := Fstab([]Partition{{Definition: &d}}, compat.Newest); ok {
		t.Error("a partition without a file system gets an fstab line")
	}
	if _, ok := Crypttab([]Partition{{Definition: &d}}, compat.Newest); ok {
		t.Error("a partition without encryption gets a crypttab line")
	}
}

// The crypttab lines 262 wrote (observed) for each shape of
// EncryptedVolume=, on partitions with Encrypt=key-file.
func TestCrypttab(t *testing.T) {
	luks := uuid.MustParse("08e61f62-4fd2-4845-97d2-b80479ee41ac")
	for _, c := range []struct {
		v    *repartd.EncryptedVolume
		want string
	}{
		{&repartd.EncryptedVolume{Name: "myname"}, "myname UUID=08e61f62-4fd2-4845-97d2-b80479ee41ac - \n"},
		{&repartd.EncryptedVolume{KeyFile: "/etc/key"}, "luks-08e61f62-4fd2-4845-97d2-b80479ee41ac UUID=08e61f62-4fd2-4845-97d2-b80479ee41ac /etc/key \n"},
		{&repartd.EncryptedVolume{Options: "opt1,opt2"}, "luks-08e61f62-4fd2-4845-97d2-b80479ee41ac UUID=08e61f62-4fd2-4845-97d2-b80479ee41ac - opt1,opt2\n"},
		{&repartd.EncryptedVolume{Name: "n", KeyFile: "none"}, "n UUID=08e61f62-4fd2-4845-97d2-b80479ee41ac none \n"},
		{&repartd.EncryptedVolume{Name: "n", KeyFile: "-", Options: "-"}, "n UUID=08e61f62-4fd2-4845-97d2-b80479ee41ac - -\n"},
	} {
		d := repartd.Definition{Encrypt: encryption.Mode("key-file"), Format: "ext4", EncryptedVolume: c.v}
		got, ok := Crypttab([]Partition{{Definition: &d, LUKSUUID: luks}}, compat.Newest)
		if want := header + "\n\n" + c.want; !ok || got != want {
			t.Errorf("%+v: got %q, want %q", *c.v, got, want)
		}
	}
}

// testdata/merge: an existing fstab (.in) and what systemd-repart 262
// made of it with --append-fstab=auto (.out), the generated text being
// testdata/merge/generated.
func TestMergeAsSystemdDoesIt(t *testing.T) {
	gen, err := os.ReadFile("testdata/merge/generated")
	if err != nil {
		t.Fatal(err)
	}
	ins, _ := filepath.Glob("testdata/merge/*.in")
	if len(ins) < 20 {
		t.Fatalf("only %d cases", len(ins))
	}
	for _, in := range ins {
		old, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(strings.TrimSuffix(in, ".in") + ".out")
		if err != nil {
			t.Fatal(err)
		}
		if got := Merge(old, string(gen)); string(got) != string(want) {
			t.Errorf("%s: got\n%q\nwant\n%q", filepath.Base(in), got, want)
		}
	}
}

func TestTargetContent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fstab")
	gen := StartMarker + "\nx\n" + EndMarker + "\n"
	for _, mode := range []Append{AppendNo, AppendAuto, AppendReplace} {
		c, changed, err := Target{path, mode}.Content(gen)
		if err != nil || !changed || string(c) != gen {
			t.Errorf("%s, no file: %q %v %v", mode, c, changed, err)
		}
	}
	if err := Write(path, []byte("user\n")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := (Target{path, AppendNo}).Content(gen); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("no: %v", err)
	}
	if c, changed, err := (Target{path, AppendAuto}).Content(gen); err != nil || !changed || string(c) != gen+"user\n" {
		t.Errorf("auto: %q %v %v", c, changed, err)
	}
	if err := Write(path, []byte(gen+"user\n")); err != nil {
		t.Fatal(err)
	}
	if _, changed, err := (Target{path, AppendAuto}).Content(gen); err != nil || changed {
		t.Errorf("auto, same again: changed %v %v", changed, err)
	}
	if _, _, err := (Target{filepath.Join(dir, "nodir", "fstab"), AppendReplace}).Content(gen); err == nil {
		t.Error("a missing directory is accepted")
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v %v", st.Mode(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".fstab.sprout-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// The crypttab of testdata/features/crypttab (a deferred new home whose
// definition comes before tmp's): 262 lists it last, by its place on the
// disk; 257 leaves it out (observed on both).
func TestCrypttabOrderByVersion(t *testing.T) {
	vol := func(name string) *repartd.Definition {
		return &repartd.Definition{Encrypt: encryption.Mode("key-file"), Format: "ext4", EncryptedVolume: &repartd.EncryptedVolume{Name: name}}
	}
	parts := []Partition{
		{Definition: vol("var"), Index: 3, Offset: 300},
		{Definition: vol("home"), Index: 7, Offset: 900, Deferred: true},
		{Definition: vol("tmp"), Index: 5, Offset: 500},
	}
	for _, c := range []struct {
		v    compat.Version
		want []string
	}{{262, []string{"var", "tmp", "home"}}, {257, []string{"var", "tmp"}}} {
		text, _ := Crypttab(parts, c.v)
		var names []string
		for _, l := range strings.Split(text, "\n")[2:] {
			if f := strings.Fields(l); len(f) > 0 {
				names = append(names, f[0])
			}
		}
		if strings.Join(names, " ") != strings.Join(c.want, " ") {
			t.Errorf("%d: %v, want %v", c.v, names, c.want)
		}
	}
}
