package repartd

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// summary is "file:label" for each definition (label "-" when unset).
func summary(defs []Definition) []string {
	var out []string
	for _, d := range defs {
		l := "-"
		if d.Label != nil {
			l = *d.Label
		}
		out = append(out, d.File+":"+l)
	}
	return out
}

func def(label string) string { return "[Partition]\nType=home\nLabel=" + label + "\n" }

func TestLoadSearchPathUnderRoot(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "usr/lib/repart.d/10-a.conf", def("usr-lib"))
	writeFile(t, root, "usr/local/lib/repart.d/10-a.conf", def("usr-local"))
	writeFile(t, root, "run/repart.d/10-a.conf", def("run"))
	writeFile(t, root, "etc/repart.d/10-a.conf", def("etc"))
	writeFile(t, root, "usr/lib/repart.d/20-b.conf", def("usr-lib"))
	writeFile(t, root, "usr/local/lib/repart.d/20-b.conf", def("usr-local"))
	writeFile(t, root, "usr/lib/repart.d/30-c.conf", def("usr-lib"))
	writeFile(t, root, "run/repart.d/30-c.conf", def("run"))
	writeFile(t, root, "usr/lib/repart.d/05-z.conf", def("usr-lib"))
	writeFile(t, root, "etc/repart.d/40-y.conf", def("etc"))

	defs, err := Load(Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"05-z.conf:usr-lib", "10-a.conf:etc", "20-b.conf:usr-local", "30-c.conf:run", "40-y.conf:etc"}
	if got := summary(defs); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if defs[1].Path != filepath.Join(root, "etc/repart.d/10-a.conf") {
		t.Errorf("Path = %s", defs[1].Path)
	}
}

func TestLoadDefaultRootIsSlash(t *testing.T) {
	o := Options{}
	want := []string{"/etc/repart.d", "/run/repart.d", "/usr/local/lib/repart.d", "/usr/lib/repart.d"}
	if got := o.dirs(); !reflect.DeepEqual(got, want) {
		t.Errorf("dirs() = %v, want %v", got, want)
	}
	o = Options{Root: "/sysroot"}
	want = []string{"/sysroot/etc/repart.d", "/sysroot/run/repart.d", "/sysroot/usr/local/lib/repart.d", "/sysroot/usr/lib/repart.d"}
	if got := o.dirs(); !reflect.DeepEqual(got, want) {
		t.Errorf("dirs() = %v, want %v", got, want)
	}
}

func TestLoadDefinitionsDirsReplaceSearchPathAndIgnoreRoot(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "etc/repart.d/10-a.conf", def("root-etc"))
	d1 := filepath.Join(t.TempDir(), "d1")
	d2 := filepath.Join(t.TempDir(), "d2")
	writeFile(t, d1, "10-a.conf", def("d1"))
	writeFile(t, d2, "10-a.conf", def("d2"))
	writeFile(t, d2, "20-b.conf", def("d2"))

	defs, err := Load(Options{Root: root, Dirs: []string{d2, d1, d2}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := summary(defs), []string{"10-a.conf:d2", "20-b.conf:d2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := (Options{Dirs: []string{d2, d1, d2, d1}}).dirs(); !reflect.DeepEqual(got, []string{d2, d1}) {
		t.Errorf("dirs() not de-duplicated: %v", got)
	}
}

func TestLoadMasking(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	// A /dev/null symlink masks the name in all later directories.
	symlink(t, "/dev/null", filepath.Join(d1, "10-null.conf"))
	writeFile(t, d2, "10-null.conf", def("masked"))
	// So does an empty file.
	writeFile(t, d1, "20-empty.conf", "")
	writeFile(t, d2, "20-empty.conf", def("masked"))
	// A mask in a later directory does not hide an earlier file.
	writeFile(t, d1, "30-keep.conf", def("d1"))
	symlink(t, "/dev/null", filepath.Join(d2, "30-keep.conf"))
	// A mask without any file is harmless.
	symlink(t, "/dev/null", filepath.Join(d2, "40-nothing.conf"))
	// A file holding only a blank line is not empty, so not a mask.
	writeFile(t, d1, "50-blank.conf", " \n")

	_, err := Load(Options{Dirs: []string{d1, d2}})
	var se *Error
	if !errors.As(err, &se) || se.File != filepath.Join(d1, "50-blank.conf") || se.Key != "Type" {
		t.Fatalf("blank file: err = %v, want Type= not set", err)
	}
	os.Remove(filepath.Join(d1, "50-blank.conf"))

	defs, err := Load(Options{Dirs: []string{d1, d2}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := summary(defs), []string{"30-keep.conf:d1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestLoadSkipsWhatIsNotADefinition(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	writeFile(t, d1, "10-a.conf", def("a"))
	writeFile(t, d1, "notes.txt", "junk")
	writeFile(t, d1, "10-a.conf~", "junk")
	writeFile(t, d1, ".hidden.conf", "junk")
	writeFile(t, d1, "sub/20-b.conf", "junk") // not searched recursively
	writeFile(t, d1, "x.conf.d/ignored.conf", "junk")
	// A directory or a dangling symlink named *.conf is skipped and does
	// not hide the same name in a later directory.
	if err := os.Mkdir(filepath.Join(d1, "30-dir.conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, d2, "30-dir.conf", def("d2"))
	symlink(t, filepath.Join(d1, "missing"), filepath.Join(d1, "40-dangling.conf"))
	writeFile(t, d2, "40-dangling.conf", def("d2"))
	if err := syscall.Mkfifo(filepath.Join(d1, "50-fifo.conf"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeFile(t, d2, "50-fifo.conf", def("d2"))
	// A symlink to a regular file is followed.
	target := writeFile(t, t.TempDir(), "elsewhere", def("linked"))
	symlink(t, target, filepath.Join(d1, "60-link.conf"))

	defs, err := Load(Options{Dirs: []string{d1, d2}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10-a.conf:a", "30-dir.conf:d2", "40-dangling.conf:d2", "50-fifo.conf:d2", "60-link.conf:linked"}
	if got := summary(defs); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestLoadSortsByBasenameBytes(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	for _, n := range []string{"b.conf", "B.conf", "10-x.conf", "9-x.conf"} {
		writeFile(t, d2, n, def(n))
	}
	for _, n := range []string{"a.conf", "A.conf", "_.conf"} {
		writeFile(t, d1, n, def(n))
	}
	defs, err := Load(Options{Dirs: []string{d1, d2}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range defs {
		got = append(got, d.File)
	}
	want := []string{"10-x.conf", "9-x.conf", "A.conf", "B.conf", "_.conf", "a.conf", "b.conf"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

func TestLoadMissingDirectories(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "plain", "x")
	defs, err := Load(Options{Dirs: []string{filepath.Join(dir, "nope"), file, filepath.Join(file, "sub")}})
	if err != nil || len(defs) != 0 {
		t.Errorf("Load = %v, %v; want nothing", defs, err)
	}
	defs, err = Load(Options{Root: filepath.Join(dir, "empty-root")})
	if err != nil || len(defs) != 0 {
		t.Errorf("Load = %v, %v; want nothing", defs, err)
	}
}

// A directory that exists but cannot be listed is an error naming it (we
// run as root in CI, so provoke ENAMETOOLONG rather than EACCES).
func TestLoadUnreadableDirectory(t *testing.T) {
	long := filepath.Join(t.TempDir(), strings.Repeat("x", 300))
	_, err := Load(Options{Dirs: []string{long}})
	var se *Error
	if !errors.As(err, &se) || se.File != long || !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Fatalf("err = %v, want an *Error naming the directory", err)
	}
}

func TestLoadDropIns(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	writeFile(t, d2, "a.conf", "[Partition]\nType=home\nLabel=main\n")
	// Drop-ins from all directories, applied in name order.
	writeFile(t, d2, "a.conf.d/05-y.conf", "[Partition]\nLabel=y\nWeight=5\n")
	writeFile(t, d1, "a.conf.d/10-x.conf", "[Partition]\nLabel=x1\n")
	// Same name: the earlier directory wins.
	writeFile(t, d2, "a.conf.d/10-x.conf", "[Partition]\nLabel=x2\nPriority=9\n")
	// Masks: /dev/null and an empty file hide a later directory's drop-in.
	symlink(t, "/dev/null", filepath.Join(d1, "a.conf.d/20-null.conf"))
	writeFile(t, d2, "a.conf.d/20-null.conf", "[Partition]\nLabel=masked\n")
	writeFile(t, d1, "a.conf.d/30-empty.conf", "")
	writeFile(t, d2, "a.conf.d/30-empty.conf", "[Partition]\nLabel=masked\n")
	// A dangling symlink also takes the name (systemd does not look at
	// drop-ins before reading them, and skips missing ones).
	symlink(t, filepath.Join(d1, "missing"), filepath.Join(d1, "a.conf.d/40-dangling.conf"))
	writeFile(t, d2, "a.conf.d/40-dangling.conf", "[Partition]\nLabel=masked\n")
	// Not drop-ins.
	writeFile(t, d1, "a.conf.d/.hidden.conf", "[Partition]\nLabel=hidden\n")
	writeFile(t, d1, "a.conf.d/zz.txt", "[Partition]\nLabel=txt\n")
	writeFile(t, d1, "a.conf.d/zz.conf~", "[Partition]\nLabel=backup\n")
	// Drop-ins without a main file do nothing.
	writeFile(t, d1, "orphan.conf.d/x.conf", "[Partition]\nType=home\n")

	defs, err := Load(Options{Dirs: []string{d1, d2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(defs) != 1 {
		t.Fatalf("got %d definitions", len(defs))
	}
	d := defs[0]
	if *d.Label != "x1" || d.Weight != 5 || d.Priority != 0 {
		t.Errorf("label %q weight %d priority %d; want x1 5 0", *d.Label, d.Weight, d.Priority)
	}
	wantDropIns := []string{filepath.Join(d2, "a.conf.d/05-y.conf"), filepath.Join(d1, "a.conf.d/10-x.conf")}
	if !reflect.DeepEqual(d.DropIns, wantDropIns) {
		t.Errorf("DropIns = %v, want %v", d.DropIns, wantDropIns)
	}
	if d.Where("Label") != filepath.Join(d1, "a.conf.d/10-x.conf")+":2" {
		t.Errorf("Where(Label) = %s", d.Where("Label"))
	}
}

func TestLoadDropInsUnderRoot(t *testing.T) {
	// Deliberate difference from systemd-repart 252, which reads drop-ins
	// of --root definitions from the host (see Load).
	root := t.TempDir()
	writeFile(t, root, "usr/lib/repart.d/a.conf", def("main"))
	writeFile(t, root, "etc/repart.d/a.conf.d/x.conf", "[Partition]\nLabel=dropin\n")
	defs, err := Load(Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(defs); !reflect.DeepEqual(got, []string{"a.conf:dropin"}) {
		t.Errorf("got %v", got)
	}
}

func TestLoadDropInErrors(t *testing.T) {
	d := t.TempDir()
	writeFile(t, d, "a.conf", def("main"))
	if err := os.MkdirAll(filepath.Join(d, "a.conf.d/dir.conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Load(Options{Dirs: []string{d}})
	var se *Error
	if !errors.As(err, &se) || se.File != filepath.Join(d, "a.conf.d/dir.conf") || !strings.Contains(se.Msg, "not a regular file") {
		t.Fatalf("err = %v", err)
	}

	d = t.TempDir()
	writeFile(t, d, "a.conf", def("main"))
	bad := writeFile(t, d, "a.conf.d/x.conf", "[Partition]\nEncrypt=tpm1\n")
	_, err = Load(Options{Dirs: []string{d}})
	if !errors.As(err, &se) || se.File != bad || se.Line != 2 || se.Key != "Encrypt" {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadFirstErrorWins(t *testing.T) {
	d := t.TempDir()
	writeFile(t, d, "10-ok.conf", def("ok"))
	bad := writeFile(t, d, "20-bad.conf", "[Partition]\nType=home\nVerity=data\n")
	writeFile(t, d, "30-bad.conf", "[Partition]\n")
	_, err := Load(Options{Dirs: []string{d}})
	var se *Error
	if !errors.As(err, &se) || se.File != bad || se.Line != 3 {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadDuplicateUUIDs(t *testing.T) {
	d := t.TempDir()
	writeFile(t, d, "10-a.conf", "[Partition]\nType=home\nUUID=01234567-89ab-cdef-0123-456789abcdef\n")
	b := writeFile(t, d, "20-b.conf", "[Partition]\nType=srv\n\nUUID=0123456789ABCDEF0123456789ABCDEF\n")
	_, err := Load(Options{Dirs: []string{d}})
	var se *Error
	if !errors.As(err, &se) || se.File != b || se.Line != 4 || se.Key != "UUID" ||
		!strings.Contains(se.Msg, "10-a.conf") || !strings.Contains(se.Msg, filepath.Join(d, "10-a.conf")+":3") {
		t.Fatalf("err = %v", err)
	}

	// UUID=null may repeat; distinct UUIDs are fine; a reset UUID= is not
	// explicit.
	d = t.TempDir()
	writeFile(t, d, "10-a.conf", "[Partition]\nType=home\nUUID=null\n")
	writeFile(t, d, "20-b.conf", "[Partition]\nType=srv\nUUID=null\n")
	writeFile(t, d, "30-c.conf", "[Partition]\nType=var\nUUID=01234567-89ab-cdef-0123-456789abcdef\n")
	writeFile(t, d, "40-d.conf", "[Partition]\nType=tmp\nUUID=11234567-89ab-cdef-0123-456789abcdef\n")
	writeFile(t, d, "50-e.conf", "[Partition]\nType=tmp\nUUID=11234567-89ab-cdef-0123-456789abcdef\nUUID=\n")
	if _, err := Load(Options{Dirs: []string{d}}); err != nil {
		t.Fatal(err)
	}
}

func TestSplitWhere(t *testing.T) {
	for in, want := range map[string]struct {
		file string
		line int
	}{
		"/a/b.conf:12":  {"/a/b.conf", 12},
		"/a:b/c.conf:3": {"/a:b/c.conf", 3},
		"/a/b.conf":     {"/a/b.conf", 0},
		"/a/b.conf:x":   {"/a/b.conf:x", 0},
	} {
		f, l := splitWhere(in)
		if f != want.file || l != want.line {
			t.Errorf("splitWhere(%q) = %q, %d", in, f, l)
		}
	}
}
