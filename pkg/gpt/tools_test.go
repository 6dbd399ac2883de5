package gpt

// Integration tests: they check sprout's GPT code against the installed
// sfdisk, sgdisk and systemd-repart, using loop devices for sector sizes
// other than 512. They skip, saying why, when a tool is missing or the
// test does not run as root — unless the SPROUT_REQUIRE_ variables make
// that a failure (tests/harness's Require helpers).

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/tests/harness"
)

// run runs a command and returns its stdout; stderr goes into the failure
// message.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, stderr, err := runErr(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr)
	}
	return out
}

func runErr(name string, args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// device returns a path through which tools see path with the given
// logical sector size: the file itself for 512, else a loop device that is
// detached when the test ends.
func device(t *testing.T, path string, sectorSize int) string {
	t.Helper()
	if sectorSize == 512 {
		return path
	}
	dev := strings.TrimSpace(run(t, "losetup", "-f", "--show", "--sector-size", fmt.Sprint(sectorSize), path))
	t.Cleanup(func() {
		if _, stderr, err := runErr("losetup", "-d", dev); err != nil {
			t.Errorf("losetup -d %s: %v %s", dev, err, stderr)
		}
	})
	return dev
}

func readFile(t *testing.T, path string, sectorSize int) (*Table, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	tab, err := Read(f, st.Size(), sectorSize)
	if err == nil {
		diskfsAgrees(t, f, st.Size(), tab)
	}
	return tab, err
}

func mustReadFile(t *testing.T, path string, sectorSize int) *Table {
	t.Helper()
	tab, err := readFile(t, path, sectorSize)
	if err != nil {
		t.Fatalf("Read %s: %v", path, err)
	}
	return tab
}

// writeFile performs writes like pkg/apply does: in order, syncing after
// each header.
func writeFile(t *testing.T, path string, writes []Write) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, w := range writes {
		if _, err := f.WriteAt(w.Data, w.Offset); err != nil {
			t.Fatalf("%s: %v", w.What, err)
		}
		if strings.HasSuffix(w.What, "header") {
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	run(t, "cp", "--sparse=always", src, dst)
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// sameFiles fails unless a and b have equal contents.
func sameFiles(t *testing.T, a, b string) {
	t.Helper()
	if out, stderr, err := runErr("cmp", a, b); err != nil {
		t.Fatalf("%s and %s differ: %s%s", a, b, out, stderr)
	}
}

// sameRegions compares byte ranges of two (possibly huge, sparse) files.
func sameRegions(t *testing.T, a, b string, regions [][2]int64) {
	t.Helper()
	fa, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	for _, r := range regions {
		ba, bb := make([]byte, r[1]), make([]byte, r[1])
		if _, err := fa.ReadAt(ba, r[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := fb.ReadAt(bb, r[0]); err != nil {
			t.Fatal(err)
		}
		if i := firstDiff(ba, bb); i >= 0 {
			t.Errorf("%s and %s differ at byte %d", a, b, r[0]+int64(i))
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// sgdiskClean fails unless `sgdisk -v` finds no problem on dev.
func sgdiskClean(t *testing.T, dev string) {
	t.Helper()
	out := run(t, "sgdisk", "-v", dev)
	if !sgdiskSaysClean(out) {
		t.Errorf("sgdisk -v %s:\n%s", dev, out)
	}
}

// sgdiskSaysClean reports whether `sgdisk -v` output says the table is
// fine. sgdisk can print "No problems found" after having fallen back to
// one copy, so its warning about a corrupt GPT counts too.
func sgdiskSaysClean(out string) bool {
	return strings.Contains(out, "No problems found") && !strings.Contains(out, "corrupt")
}

// sfdiskQuiet fails if sfdisk warns about dev (PMBR size mismatch, backup
// not at the end, corrupt copies) and returns its JSON dump.
func sfdiskQuiet(t *testing.T, dev string) *harness.Table {
	t.Helper()
	out, stderr, err := runErr("sfdisk", "--json", dev)
	if err != nil || strings.TrimSpace(stderr) != "" {
		t.Errorf("sfdisk --json %s: %v %s", dev, err, stderr)
	}
	return parseSfdiskJSON(t, []byte(out))
}

// freshImages runs testdata/make.sh into a temporary directory.
func freshImages(t *testing.T) string {
	t.Helper()
	harness.RequireHostOracle(t)
	harness.RequireTools(t, "sfdisk", "sgdisk", "systemd-repart", "losetup", "gzip")
	harness.RequireLoopDevices(t, "other sector sizes on loop devices")
	dir := t.TempDir()
	script, err := filepath.Abs(filepath.Join("testdata", "make.sh"))
	if err != nil {
		t.Fatal(err)
	}
	run(t, "sh", script, dir)
	return dir
}

func gunzipTo(t *testing.T, src, dst string) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The images the installed tools make today equal the committed references,
// Read agrees with sfdisk about them, and an unchanged table writes back
// byte-identically (sgdisk agrees the result is clean).
func TestLiveToolImagesRoundTrip(t *testing.T) {
	dir := freshImages(t)
	for _, g := range goldenImages {
		t.Run(g.name, func(t *testing.T) {
			fresh := filepath.Join(dir, g.name+".img")
			gunzipTo(t, filepath.Join(dir, g.name+".img.gz"), fresh)
			committed := filepath.Join(t.TempDir(), "committed.img")
			if err := os.WriteFile(committed, goldenImage(t, g.name), 0o644); err != nil {
				t.Fatal(err)
			}
			sameFiles(t, fresh, committed)

			tab := mustReadFile(t, fresh, g.sectorSize)
			compareWithSfdisk(t, tab, sfdiskQuiet(t, device(t, fresh, g.sectorSize)))

			out := filepath.Join(t.TempDir(), "out.img")
			copyFile(t, fresh, out)
			writeFile(t, out, mustEncode(t, tab, 16*mib))
			sameFiles(t, fresh, out)
			sgdiskClean(t, device(t, out, g.sectorSize))
		})
	}
}

// Defects 1 and 2 against the tools: on a grown disk, Relocate + Encode
// write exactly what `sfdisk --relocate gpt-bak-std` writes (backup at the
// end, LastUsableLBA raised, protective MBR resized — at 4096-byte sectors
// too), and sgdisk finds nothing wrong.
func TestLiveGrownDiskMatchesSfdiskRelocate(t *testing.T) {
	dir := freshImages(t)
	for _, g := range []struct {
		name string
		ss   int
	}{{"layout-512", 512}, {"layout-4096", 4096}, {"repart-512", 512}, {"repart-4096", 4096}, {"moved-512", 512}} {
		t.Run(g.name, func(t *testing.T) {
			tmp := t.TempDir()
			src := filepath.Join(tmp, "src.img")
			gunzipTo(t, filepath.Join(dir, g.name+".img.gz"), src)
			truncate(t, src, 64*mib)
			ours, theirs := filepath.Join(tmp, "ours.img"), filepath.Join(tmp, "sfdisk.img")
			copyFile(t, src, ours)
			copyFile(t, src, theirs)

			if out := run(t, "sgdisk", "-v", device(t, src, g.ss)); !strings.Contains(out, "secondary header's self-pointer") {
				t.Fatalf("the grown image is not what the test means to repair; sgdisk -v:\n%s", out)
			}
			tab := mustReadFile(t, ours, g.ss)
			if !tab.Grown(64 * mib) {
				t.Fatal("Grown is false")
			}
			tab.Relocate(64 * mib)
			writeFile(t, ours, mustEncode(t, tab, 64*mib))
			run(t, "sfdisk", "-q", "--relocate", "gpt-bak-std", device(t, theirs, g.ss))

			sameFiles(t, ours, theirs)
			sgdiskClean(t, device(t, ours, g.ss))
			sfdiskQuiet(t, device(t, ours, g.ss))
		})
	}
}

// Defect 3 against the tools: a 16 MiB image grown to a sparse 3 TiB file.
// Our protective MBR (size 0xFFFFFFFF) and GPT equal sfdisk's, sfdisk does
// not report a PMBR size mismatch, and a fresh 3 TiB table equals
// systemd-repart's.
func TestLiveLargeDiskProtectiveMBR(t *testing.T) {
	dir := freshImages(t)
	const size = 3 << 40
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src.img")
	gunzipTo(t, filepath.Join(dir, "layout-512.img.gz"), src)
	truncate(t, src, size)
	ours, theirs := filepath.Join(tmp, "ours.img"), filepath.Join(tmp, "sfdisk.img")
	copyFile(t, src, ours)
	copyFile(t, src, theirs)

	tab := mustReadFile(t, ours, 512)
	tab.Relocate(size)
	writeFile(t, ours, mustEncode(t, tab, size))
	run(t, "sfdisk", "-q", "--relocate", "gpt-bak-std", theirs)
	regions := [][2]int64{{0, mib}, {16*mib - mib, 2 * mib}, {size - mib, mib}}
	sameRegions(t, ours, theirs, regions)
	sgdiskClean(t, ours)
	sfdiskQuiet(t, ours)

	repart := filepath.Join(tmp, "repart.img")
	empty := t.TempDir()
	run(t, "systemd-repart", "--dry-run=no", "--empty=create", "--size=3T", "--no-pager", "--definitions="+empty, repart)
	read := mustReadFile(t, repart, 512)
	fresh := filepath.Join(tmp, "new.img")
	truncate(t, mkfile(t, fresh), size)
	writeFile(t, fresh, mustEncode(t, New(size, 512, read.DiskGUID), size))
	sameRegions(t, fresh, repart, [][2]int64{{0, mib}, {size - mib, mib}})
}

func mkfile(t *testing.T, path string) string {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// New against systemd-repart --empty=force (no definitions) on files and
// loop devices of every logical sector size, around libfdisk's 4 MiB
// alignment threshold: same header fields, and Encode onto a zeroed disk
// gives systemd-repart's image byte for byte.
func TestLiveNewMatchesSystemdRepart(t *testing.T) {
	harness.RequireHostOracle(t)
	harness.RequireTools(t, "systemd-repart", "losetup", "sfdisk")
	harness.RequireLoopDevices(t, "other sector sizes on loop devices")
	empty := t.TempDir()
	for _, ss := range []int{512, 1024, 2048, 4096} {
		for _, size := range []int64{4 * mib, 4*mib + int64(ss), 64 * mib} {
			t.Run(fmt.Sprintf("%d-byte sectors, %d bytes", ss, size), func(t *testing.T) {
				tmp := t.TempDir()
				ref := filepath.Join(tmp, "repart.img")
				truncate(t, mkfile(t, ref), size)
				run(t, "systemd-repart", "--dry-run=no", "--empty=force", "--no-pager", "--definitions="+empty, device(t, ref, ss))
				read := mustReadFile(t, ref, ss)
				tab := New(size, ss, read.DiskGUID)
				if tab.FirstUsableLBA != read.FirstUsableLBA || tab.LastUsableLBA != read.LastUsableLBA ||
					tab.BackupLBA != read.BackupLBA || tab.EntryCount != read.EntryCount {
					t.Fatalf("New: first %d last %d backup %d entries %d; systemd-repart: %d %d %d %d",
						tab.FirstUsableLBA, tab.LastUsableLBA, tab.BackupLBA, tab.EntryCount,
						read.FirstUsableLBA, read.LastUsableLBA, read.BackupLBA, read.EntryCount)
				}
				ours := filepath.Join(tmp, "new.img")
				truncate(t, mkfile(t, ours), size)
				writeFile(t, ours, mustEncode(t, tab, size))
				sameFiles(t, ours, ref)
			})
		}
	}
}

// Defect 5 against the tools: an MBR-only disk made by sfdisk is
// ErrOtherLabel, a zeroed one ErrNoLabel — never an empty GPT or a DOS
// table passed off as one.
func TestLiveMBROnlyAndBlankDisks(t *testing.T) {
	harness.RequireTools(t, "sfdisk")
	tmp := t.TempDir()
	dos := filepath.Join(tmp, "dos.img")
	truncate(t, mkfile(t, dos), 16*mib)
	cmd := exec.Command("sfdisk", "-q", dos)
	cmd.Stdin = strings.NewReader("label: dos\nstart=2048, size=4096, type=83\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	if _, err := readFile(t, dos, 512); !errors.Is(err, ErrOtherLabel) {
		t.Errorf("sfdisk label: dos: %v, want ErrOtherLabel", err)
	}
	blank := filepath.Join(tmp, "blank.img")
	truncate(t, mkfile(t, blank), 16*mib)
	if _, err := readFile(t, blank, 512); !errors.Is(err, ErrNoLabel) {
		t.Errorf("zeroed image: %v, want ErrNoLabel", err)
	}
}

// Defect 9 against the tools: sgdisk flags a damaged backup (or primary);
// Read reports it, and writing the unchanged table repairs it to the
// original bytes, which sgdisk then accepts.
func TestLiveRepairDamagedCopies(t *testing.T) {
	dir := freshImages(t)
	for _, c := range []struct {
		name   string
		offset int64 // where one byte is flipped
		backup bool
	}{
		{"backup header", 16*mib - 512 + 60, true},
		{"backup entry array", 16*mib - 33*512 + 300, true},
		{"primary header", 512 + 60, false},
		{"primary entry array", 1024 + 300, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			orig, img := filepath.Join(tmp, "orig.img"), filepath.Join(tmp, "damaged.img")
			gunzipTo(t, filepath.Join(dir, "layout-512.img.gz"), orig)
			copyFile(t, orig, img)
			f, err := os.OpenFile(img, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 1)
			f.ReadAt(b, c.offset)
			b[0] ^= 0xFF
			f.WriteAt(b, c.offset)
			f.Close()
			if out, _, _ := runErr("sgdisk", "-v", img); sgdiskSaysClean(out) {
				t.Fatalf("sgdisk does not see the damage:\n%s", out)
			}
			tab := mustReadFile(t, img, 512)
			if c.backup && tab.BackupInvalid == "" || !c.backup && !tab.RecoveredFromBackup {
				t.Fatalf("damage not reported: BackupInvalid %q RecoveredFromBackup %v", tab.BackupInvalid, tab.RecoveredFromBackup)
			}
			writeFile(t, img, mustEncode(t, tab, 16*mib))
			sameFiles(t, orig, img)
			sgdiskClean(t, img)
		})
	}
}

// Defect 6 against sgdisk: a table sgdisk would call broken (overlap, an
// entry reaching into the backup array) is refused before anything is
// written.
func TestLiveValidateAgreesWithSgdisk(t *testing.T) {
	harness.RequireTools(t, "sgdisk")
	tmp := t.TempDir()
	for _, c := range []struct {
		name       string
		first, end uint64
		sgdiskSays string
	}{
		{"overlap", 3000, 5000, "overlap"},
		{"into backup array", 131038 - 10, 131038 + 20, "overlaps the last partition"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tab := New(64*mib, 512, uuid.New())
			tab.Entries = []Entry{
				{Index: 1, Type: uuid.New(), UUID: uuid.New(), FirstLBA: 2048, LastLBA: 4095},
				{Index: 2, Type: uuid.New(), UUID: uuid.New(), FirstLBA: c.first, LastLBA: c.end},
			}
			if _, err := tab.Encode(64 * mib); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Encode: %v, want ErrInvalid", err)
			}
			// Write it anyway, bypassing Validate's bounds through a
			// raw array edit, to confirm sgdisk calls it broken too.
			img := filepath.Join(tmp, c.name+".img")
			truncate(t, mkfile(t, img), 64*mib)
			good := tab.Clone()
			good.Entries[1].FirstLBA, good.Entries[1].LastLBA = 8192, 8193
			d := newMemDisk(64 * mib)
			apply(t, d, mustEncode(t, good, 64*mib))
			patchEntries(d, 512, func(a []byte) { putU64(a[128:], 32, c.first); putU64(a[128:], 40, c.end) })
			raw := d.bytesAt(0, int(d.size))
			if err := os.WriteFile(img, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			out, _, _ := runErr("sgdisk", "-v", img)
			if !strings.Contains(out, c.sgdiskSays) {
				t.Errorf("sgdisk -v does not report %q:\n%s", c.sgdiskSays, out)
			}
			if _, err := readFile(t, img, 512); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Read of the broken table: %v, want ErrCorrupt", err)
			}
		})
	}
}
