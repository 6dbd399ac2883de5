package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"4096": 4096, "1K": 1024, "600M": 600 << 20, "10G": 10 << 30, "2T": 2 << 40, "1.5M": 1572864, "15000000": 15000000,
	} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1", "1Q", "99999999999P"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) succeeded", bad)
		}
	}
	if got := FormatSize(3<<20 + 512); got != "3146240" {
		t.Errorf("FormatSize = %q", got)
	}
	if got := FormatSize(10 << 30); got != "10G" {
		t.Errorf("FormatSize = %q", got)
	}
}

func TestShellJoin(t *testing.T) {
	got := ShellJoin([]string{"sprout", "--definitions=/a b", "it's", "--seed=0f"})
	want := `sprout '--definitions=/a b' 'it'\''s' --seed=0f`
	if got != want {
		t.Errorf("ShellJoin = %s, want %s", got, want)
	}
}

// writeAt writes data at off, creating the file.
func writeAt(t *testing.T, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

func TestCopySparseAndContentHash(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	const size = 1 << 40 // 1 TiB, sparse
	if err := CreateSparse(src, size); err != nil {
		t.Fatal(err)
	}
	writeAt(t, src, 0, []byte("head"))
	writeAt(t, src, 700<<30+5, []byte("middle"))
	writeAt(t, src, size-3, []byte("end"))
	dst := filepath.Join(dir, "dst.img")
	if err := CopySparse(src, dst); err != nil {
		t.Fatal(err)
	}
	if n, _ := Size(dst); n != size {
		t.Fatalf("copy has %d bytes, want %d", n, size)
	}
	if alloc, _ := AllocatedBytes(dst); alloc > 64<<20 {
		t.Errorf("copy allocates %d bytes: not sparse", alloc)
	}
	hs, err := ContentHash(src)
	if err != nil {
		t.Fatal(err)
	}
	hd, err := ContentHash(dst)
	if err != nil {
		t.Fatal(err)
	}
	if hs != hd {
		t.Fatal("copy hashes differently")
	}

	// Explicit zeros equal holes; one changed byte or a size change does not.
	writeAt(t, dst, 300<<30, make([]byte, 1<<20))
	if h, _ := ContentHash(dst); h != hs {
		t.Error("written zeros changed the hash")
	}
	writeAt(t, dst, 700<<30+7, []byte("X"))
	if h, _ := ContentHash(dst); h == hs {
		t.Error("a changed byte did not change the hash")
	}
	if err := CopySparse(src, dst); err != nil {
		t.Fatal(err)
	}
	if err := Resize(dst, size+512); err != nil {
		t.Fatal(err)
	}
	if h, _ := ContentHash(dst); h == hs {
		t.Error("a size change did not change the hash")
	}
}

func TestRangeHashIsRelative(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, p := range []string{a, b} {
		if err := CreateSparse(p, 64<<20); err != nil {
			t.Fatal(err)
		}
	}
	data := bytes.Repeat([]byte("partition"), 1000)
	writeAt(t, a, 1<<20+512, data)     // unaligned range start (sector 2049)
	writeAt(t, b, 1<<20+512, data)     // same place in b
	writeAt(t, b, 10<<20, []byte("x")) // outside the range
	ha, err := RangeHash(a, 1<<20+512, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := RangeHash(b, 1<<20+512, 4<<20)
	if ha != hb {
		t.Error("equal ranges hash differently")
	}
	writeAt(t, b, 1<<20+512+4<<20-1, []byte("y")) // last byte of the range
	if hb, _ := RangeHash(b, 1<<20+512, 4<<20); ha == hb {
		t.Error("a change in the last byte of the range was missed")
	}
}

func TestParseTableAndDiff(t *testing.T) {
	doc := `{"partitiontable": {"label": "gpt", "id": "6913F4B6-6690-4A57-A202-F1B53C56DBDF", "device": "/tmp/x.img",
	  "unit": "sectors", "firstlba": 2048, "lastlba": 1228766, "sectorsize": 512, "partitions": [
	  {"node": "/tmp/x.img1", "start": 2048, "size": 409600, "type": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "uuid": "B2D552B0-45DB-4678-B34F-066168609D1A", "name": "boot"},
	  {"node": "/tmp/x.img3", "start": 411648, "size": 100, "type": "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "uuid": "3ED50935-B785-4A2A-879D-DD4C00395D47", "name": "a", "attrs": "GUID:59"}]}}`
	want, err := ParseTable([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if want.Partitions[1].Entry != 3 {
		t.Fatalf("entry = %d, want 3", want.Partitions[1].Entry)
	}
	loop := strings.NewReplacer("/tmp/x.img1", "/dev/loop7p1", "/tmp/x.img3", "/dev/loop7p2", "/tmp/x.img", "/dev/loop7").Replace(doc)
	got, err := ParseTable([]byte(loop))
	if err != nil {
		t.Fatal(err)
	}
	d := Diff(want, got)
	if len(d) != 2 || !strings.Contains(d[0], "entry 2: unexpected") || !strings.Contains(d[1], "entry 3: missing") {
		t.Errorf("Diff = %q", d)
	}
	same, _ := ParseTable([]byte(strings.ReplaceAll(doc, "/tmp/x.img", "/other/y.img")))
	if d := Diff(want, same); len(d) != 0 {
		t.Errorf("file names must not matter: %q", d)
	}
	if _, err := ParseTable([]byte(strings.Replace(doc, `"unit"`, `"grain": 1, "unit"`, 1))); err == nil {
		t.Error("an unknown field was accepted")
	}
	saved := strings.NewReplacer(`"/tmp/x.img1"`, `"1"`, `"/tmp/x.img3"`, `"3"`, `"/tmp/x.img"`, `"x"`).Replace(doc)
	if s, err := ParseTable([]byte(saved)); err != nil || len(Diff(want, s)) != 0 {
		t.Errorf("a saved dump (node \"N\", pkg/gpt/testdata): %v %q", err, Diff(want, s))
	}
	if _, err := ParseTable([]byte(strings.ReplaceAll(doc, `"/tmp/x.img3"`, `"/tmp/y.img3"`))); err == nil {
		t.Error("a node of another device was accepted")
	}
}

func TestBackupMisplacedAndRelocate(t *testing.T) {
	RequireTools(t, "sfdisk")
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := CreateSparse(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if ok, err := HasGPT(img, 512); err != nil || ok {
		t.Fatalf("blank image: HasGPT = %v, %v", ok, err)
	}
	if _, err := RunInput(ctx, []byte("label: gpt\nsize=8MiB\n"), "sfdisk", "-q", img); err != nil {
		t.Fatal(err)
	}
	if m, err := BackupMisplaced(img, 512); err != nil || m {
		t.Fatalf("fresh table: misplaced = %v, %v", m, err)
	}
	if err := Resize(img, 128<<20); err != nil {
		t.Fatal(err)
	}
	if m, err := BackupMisplaced(img, 512); err != nil || !m {
		t.Fatalf("grown image: misplaced = %v, %v", m, err)
	}
	if err := Relocate(ctx, img); err != nil {
		t.Fatal(err)
	}
	r, err := ReadRawGPT(img, 512)
	if err != nil {
		t.Fatal(err)
	}
	if r.Primary.AlternateLBA != 128<<20/512-1 || !r.Primary.HeaderCRCOK || !r.Backup.EntriesCRCOK || r.Primary.LastUsable != 128<<20/512-34 {
		t.Errorf("after relocation: %+v / %+v", r.Primary, r.Backup)
	}
	tbl, err := ReadTable(ctx, img)
	if err != nil || len(tbl.Partitions) != 1 || tbl.Partitions[0].Entry != 1 {
		t.Fatalf("ReadTable = %v, %v", tbl, err)
	}
	if d := DiffRaw(r, r); len(d) != 0 {
		t.Errorf("DiffRaw(r, r) = %q", d)
	}
}

func TestReadGPTCopy(t *testing.T) {
	RequireTools(t, "sfdisk")
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := CreateSparse(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	script := "label: gpt\nsize=2MiB, name=a\nsize=1MiB, name=b, attrs=RequiredPartition\n"
	if _, err := RunInput(ctx, []byte(script), "sfdisk", "-q", img); err != nil {
		t.Fatal(err)
	}
	tbl, err := ReadTable(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	last := uint64(16<<20/512 - 1)
	for _, lba := range []uint64{1, last} {
		c, err := ReadGPTCopyFile(img, 512, lba)
		if err != nil || !c.Intact() {
			t.Fatalf("LBA %d: %v %q", lba, err, c.Problem)
		}
		used := c.UsedEntries()
		if len(used) != len(tbl.Partitions) {
			t.Fatalf("LBA %d: %d used entries, sfdisk lists %d", lba, len(used), len(tbl.Partitions))
		}
		for i, e := range used {
			p := tbl.Partitions[i]
			if e.Index != p.Entry || e.FirstLBA != p.Start || e.LastLBA != p.Start+p.Size-1 ||
				!strings.EqualFold(e.Type.String(), p.Type) || !strings.EqualFold(e.UUID.String(), p.UUID) {
				t.Errorf("LBA %d: entry %+v, sfdisk %s", lba, e, p)
			}
		}
		if used[1].Attrs != 1 {
			t.Errorf("entry 2 attributes %#x, want RequiredPartition (bit 0)", used[1].Attrs)
		}
	}
	for _, c := range []struct {
		lba  uint64
		want string
	}{{0, "no GPT signature"}, {2, "no GPT signature"}, {last + 1, "beyond the end of the disk"}} {
		if got, _ := ReadGPTCopyFile(img, 512, c.lba); got.Problem != c.want {
			t.Errorf("LBA %d: problem %q, want %q", c.lba, got.Problem, c.want)
		}
	}
	// A copy of the primary header elsewhere does not claim that LBA.
	primary, _ := ReadGPTCopyFile(img, 512, 1)
	writeAt(t, img, 40*512, primary.Header)
	if got, _ := ReadGPTCopyFile(img, 512, 40); got.Problem != "header says it is at LBA 1" {
		t.Errorf("moved header: problem %q", got.Problem)
	}
	// One flipped bit in the primary array, then in the primary header.
	writeAt(t, img, 2*512+100, []byte{primary.Entries[100] ^ 1})
	if got, _ := ReadGPTCopyFile(img, 512, 1); got.Problem != "entry array CRC mismatch" {
		t.Errorf("damaged array: problem %q", got.Problem)
	}
	writeAt(t, img, 512+60, []byte{primary.Header[60] ^ 1})
	if got, _ := ReadGPTCopyFile(img, 512, 1); got.Problem != "header CRC mismatch" {
		t.Errorf("damaged header: problem %q", got.Problem)
	}
}

// recorder is a testing.TB that records the first Fatalf or Skipf instead
// of ending the test.
type recorder struct {
	testing.TB
	first string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	if r.first == "" {
		r.first = "fail: " + fmt.Sprintf(format, args...)
	}
}
func (r *recorder) Skipf(format string, args ...any) {
	if r.first == "" {
		r.first = "skip: " + fmt.Sprintf(format, args...)
	}
}

func TestRequireSkipsOrFails(t *testing.T) {
	const missing = "sprout-no-such-tool"
	t.Setenv(EnvRequireOracle, "") // make test sets it
	for _, c := range []struct{ env, want string }{{"", "skip: "}, {"0", "skip: "}, {"1", "fail: "}} {
		t.Setenv(EnvRequireTools, c.env)
		r := &recorder{TB: t}
		RequireTools(r, "sh", missing)
		if !strings.HasPrefix(r.first, c.want) || !strings.Contains(r.first, missing) || strings.Contains(r.first, "sh,") {
			t.Errorf("%s=%q: %q, want %q naming only %s", EnvRequireTools, c.env, r.first, c.want, missing)
		}
		r = &recorder{TB: t}
		Unavailable(r, "why", EnvRequireOracle, EnvRequireTools)
		if !strings.HasPrefix(r.first, c.want) {
			t.Errorf("Unavailable with %s=%q: %q, want %q", EnvRequireTools, c.env, r.first, c.want)
		}
	}
	r := &recorder{TB: t}
	RequireTools(r, "sh")
	if r.first != "" {
		t.Errorf("sh is there: %q", r.first)
	}
}

// tests/README.md is the map of the tiers: every target make test runs
// has its row, and every test folder under tests/ is run by a target.
func TestTestsREADMEIsTheMap(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "tests", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var tiers []string
	for _, line := range strings.Split(string(makefile), "\n") {
		if rest, ok := strings.CutPrefix(line, "TIERS := "); ok {
			tiers = strings.Fields(rest)
		}
	}
	if len(tiers) == 0 {
		t.Fatal("Makefile: no TIERS := line")
	}
	for _, tier := range tiers {
		if !strings.Contains(string(readme), "| `"+tier+"` |") {
			t.Errorf("tests/README.md has no row for make %s", tier)
		}
		if !strings.Contains(string(makefile), "\n"+tier+":") {
			t.Errorf("Makefile: TIERS names %s, which is no target", tier)
		}
	}
	dirs, err := os.ReadDir(filepath.Join(root, "tests"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		tests, _ := filepath.Glob(filepath.Join(root, "tests", d.Name(), "*_test.go"))
		if !d.IsDir() || len(tests) == 0 {
			continue
		}
		if !strings.Contains(string(makefile), "tests/"+d.Name()) {
			t.Errorf("no make target runs tests/%s", d.Name())
		}
		if !strings.Contains(string(readme), "`tests/"+d.Name()) {
			t.Errorf("tests/README.md does not name tests/%s", d.Name())
		}
	}
}
