package repartd

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeFacts are specifier inputs with a distinct value per letter.
func fakeFacts() SystemFacts {
	return SystemFacts{
		OSRelease: map[string]string{"ID": "acme", "VERSION_ID": "2.1", "VARIANT_ID": "edge",
			"BUILD_ID": "b42", "IMAGE_ID": "appliance", "IMAGE_VERSION": "7.3"},
		MachineID:     "0123456789abcdef0123456789abcdef",
		BootID:        "fedcba9876543210fedcba9876543210",
		Hostname:      "box.example.org",
		KernelRelease: "6.1.0-9-amd64",
		Arch:          "x86-64",
		TmpDir:        "/tmp",
		VarTmpDir:     "/var/tmp",
	}
}

func parseLabel(t *testing.T, sp Specifiers, body string) (Definition, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "10-x.conf")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return ParseWith(path, nil, sp)
}

func TestLabelSpecifiers(t *testing.T) {
	sp := fakeFacts().Specifiers()
	for _, c := range []struct{ label, want string }{
		{"%a", "x86-64"},
		{"%A", "7.3"},
		{"%b", "fedcba9876543210fedcba9876543210"},
		{"%B", "b42"},
		{"%H", "box.example.org"},
		{"%l", "box"},
		{"%m", "0123456789abcdef0123456789abcdef"},
		{"%M", "appliance"},
		{"%o", "acme"},
		{"%v", "6.1.0-9-amd64"},
		{"%w", "2.1"},
		{"%W", "edge"},
		{"%T", "/tmp"},
		{"%V", "/var/tmp"},
		{"%%", "%"},
		{"%o-%w_%W", "acme-2.1_edge"},
		{"100%", "100%"},    // a trailing % stays
		{"%%%a", "%x86-64"}, // %% then a specifier
		{"%%a", "%a"},       // %% then a literal a
		{"x%", "x%"},        // trailing
		{"%ab", "x86-64b"},  // one letter only
		{"", ""},            // empty label
		{"é%o", "éacme"},    // UTF-8 around a specifier
		{"%m%%%%", "0123456789abcdef0123456789abcdef%%"},
	} {
		d, err := parseLabel(t, sp, "[Partition]\nType=home\nLabel="+c.label+"\n")
		if err != nil {
			t.Errorf("Label=%s: %v", c.label, err)
			continue
		}
		if d.Label == nil || *d.Label != c.want {
			t.Errorf("Label=%s: got %v, want %q", c.label, d.Label, c.want)
		}
		if len(d.Warnings) != 0 {
			t.Errorf("Label=%s: unexpected warnings %v", c.label, d.Warnings)
		}
	}
}

// A field missing from os-release expands to "", as in 252.
func TestLabelSpecifierEmptyField(t *testing.T) {
	f := fakeFacts()
	f.OSRelease = map[string]string{"ID": "acme"}
	for _, l := range []string{"%A", "%B", "%M", "%w", "%W"} {
		d, err := parseLabel(t, f.Specifiers(), "[Partition]\nType=home\nLabel=x"+l+"y\n")
		if err != nil || d.Label == nil || *d.Label != "xy" {
			t.Errorf("Label=x%sy: got %v %v, want \"xy\"", l, d.Label, err)
		}
	}
}

// A specifier whose source is missing makes 252 ignore the line with a
// warning; an earlier Label= (or none) stays.
func TestLabelSpecifierMissingSource(t *testing.T) {
	f := fakeFacts()
	f.OSRelease, f.OSReleaseErr = nil, errors.New("no os-release")
	f.MachineID, f.MachineIDErr = "", errors.New("no machine ID")
	sp := f.Specifiers()
	for _, l := range []string{"%o", "%w", "%W", "%B", "%M", "%A", "%m"} {
		d, err := parseLabel(t, sp, "[Partition]\nType=home\nLabel=x"+l+"\n")
		if err != nil {
			t.Errorf("Label=x%s: %v", l, err)
			continue
		}
		if d.Label != nil {
			t.Errorf("Label=x%s: label %q set, want it ignored", l, *d.Label)
		}
		if len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], "10-x.conf:3: ignoring Label=x"+l) {
			t.Errorf("Label=x%s: warnings %q", l, d.Warnings)
		}
		if _, ok := d.Lines["Label"]; ok {
			t.Errorf("Label=x%s: an ignored line is recorded as set", l)
		}
	}
	d, err := parseLabel(t, sp, "[Partition]\nType=home\nLabel=first\nLabel=%o\n")
	if err != nil || d.Label == nil || *d.Label != "first" || len(d.Warnings) != 1 {
		t.Errorf("earlier label: got %v %v %q, want \"first\" and one warning", d.Label, err, d.Warnings)
	}
	// Without values at all (Parse), a known specifier is ignored too.
	dir := t.TempDir()
	path := filepath.Join(dir, "a.conf")
	os.WriteFile(path, []byte("[Partition]\nType=home\nLabel=%a\n"), 0o644)
	if d, err := Parse(path, nil); err != nil || d.Label != nil || len(d.Warnings) != 1 {
		t.Errorf("Parse without values: %v %v %q", d.Label, err, d.Warnings)
	}
}

func TestLabelSpecifierErrors(t *testing.T) {
	sp := fakeFacts().Specifiers()
	missing := fakeFacts()
	missing.OSReleaseErr = errors.New("gone")
	for _, c := range []struct {
		name, label string
		sp          Specifiers
		msg         string
	}{
		{"unknown", "%z", sp, "unknown specifier %z"},
		{"unknown t (SplitName only)", "%t", sp, "unknown specifier %t"},
		{"unknown U", "%U", sp, "unknown specifier %U"},
		{"unknown after known", "%a%Z", sp, "unknown specifier %Z"},
		{"unknown after missing", "%o%Z", missing.Specifiers(), "unknown specifier %Z"},
		{"unknown multibyte", "%ü", sp, "unknown specifier %ü"},
		{"too long once expanded", "%m-%o", sp, `expands to "0123456789abcdef0123456789abcdef-acme", 37 bytes long`},
		{"too long host name", "%b%H", sp, "47 bytes long"},
	} {
		_, err := parseLabel(t, c.sp, "[Partition]\nType=home\n\nLabel="+c.label+"\n")
		var se *Error
		if !errors.As(err, &se) || se.Line != 4 || se.Key != "Label" || !strings.Contains(err.Error(), c.msg) ||
			!strings.Contains(err.Error(), "10-x.conf:4") {
			t.Errorf("%s: Label=%s: got %v, want an error at 10-x.conf:4 containing %q", c.name, c.label, err, c.msg)
		}
	}
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(body, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func noEnv(string) string { return "" }

func TestReadSystemFactsOSRelease(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		id    string // "" with wantErr
		err   bool
	}{
		{"etc", map[string]string{"etc/os-release": "ID=etc\n", "usr/lib/os-release": "ID=usr\n"}, "etc", false},
		{"usr/lib fallback", map[string]string{"usr/lib/os-release": "ID=usr\n"}, "usr", false},
		{"relative symlink", map[string]string{"etc/os-release": "->../usr/lib/os-release", "usr/lib/os-release": "ID=rel\n"}, "rel", false},
		{"absolute symlink stays in root", map[string]string{"etc/os-release": "->/usr/lib/os-release", "usr/lib/os-release": "ID=abs\n"}, "abs", false},
		{"dotdot cannot escape", map[string]string{"etc/os-release": "->../../../../../usr/lib/os-release", "usr/lib/os-release": "ID=in\n"}, "in", false},
		{"dangling symlink falls back", map[string]string{"etc/os-release": "->/nowhere", "usr/lib/os-release": "ID=fb\n"}, "fb", false},
		{"missing", map[string]string{"etc/hostname": "x\n"}, "", true},
		{"no ID", map[string]string{"etc/os-release": "NAME=x\n"}, "", false},
	} {
		root := writeTree(t, c.files)
		f := ReadSystemFacts(root, noEnv)
		if (f.OSReleaseErr != nil) != c.err || f.OSRelease["ID"] != c.id {
			t.Errorf("%s: ID %q err %v, want %q (error %v)", c.name, f.OSRelease["ID"], f.OSReleaseErr, c.id, c.err)
		}
	}
}

func TestParseEnvFile(t *testing.T) {
	got := parseEnvFile([]byte("# comment\n; also\nID='a b'\nVERSION_ID=\"1\\\"2\\\\\"\nIMAGE_ID=a\\ b\nBUILD_ID=  sp  \n  VARIANT_ID=v\nBROKEN='x\nNOEQUALS\nMIX=a\"b c\"'d'\n"))
	want := map[string]string{"ID": "a b", "VERSION_ID": `1"2\`, "IMAGE_ID": "a b", "BUILD_ID": "sp", "VARIANT_ID": "v", "MIX": "ab cd"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["BROKEN"]; ok {
		t.Errorf("unterminated quote accepted: %q", got["BROKEN"])
	}
	if len(got) != len(want) {
		t.Errorf("got %d keys %v, want %d", len(got), got, len(want))
	}
}

func TestReadSystemFactsMachineID(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"0123456789abcdef0123456789abcdef\n", "0123456789abcdef0123456789abcdef"},
		{"0123456789ABCDEF0123456789abcdef\n", "0123456789abcdef0123456789abcdef"},
		{"0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"},
		{"", ""},
		{"uninitialized\n", ""},
		{"01234567-89ab-cdef-0123-456789abcdef\n", ""},
		{"0123456789abcdef0123456789abcdeg\n", ""},
	} {
		root := writeTree(t, map[string]string{"etc/machine-id": c.body})
		f := ReadSystemFacts(root, noEnv)
		if f.MachineID != c.want || (f.MachineIDErr != nil) != (c.want == "") {
			t.Errorf("machine-id %q: got %q %v, want %q", c.body, f.MachineID, f.MachineIDErr, c.want)
		}
	}
	f := ReadSystemFacts(t.TempDir(), noEnv)
	if f.MachineIDErr == nil {
		t.Errorf("no machine-id file: got %q without error", f.MachineID)
	}
}

func TestReadSystemFactsTmp(t *testing.T) {
	existing := t.TempDir()
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	for _, c := range []struct {
		name      string
		root      string
		vars      map[string]string
		tmp, var_ string
	}{
		{"defaults", "", nil, "/tmp", "/var/tmp"},
		{"TMPDIR", "", map[string]string{"TMPDIR": existing}, existing, existing},
		{"TMPDIR trailing slash kept", "", map[string]string{"TMPDIR": existing + "/"}, existing + "/", existing + "/"},
		{"TMPDIR missing, TEMP", "", map[string]string{"TMPDIR": "/nonexistent-sprout", "TEMP": existing}, existing, existing},
		{"TMPDIR a file, TMP", "", map[string]string{"TMPDIR": "/proc/self/status", "TMP": existing}, existing, existing},
		{"relative", "", map[string]string{"TMPDIR": "tmp"}, "/tmp", "/var/tmp"},
		{"not normalized", "", map[string]string{"TMPDIR": existing + "/../" + filepath.Base(existing)}, "/tmp", "/var/tmp"},
		{"--root ignores the environment", t.TempDir(), map[string]string{"TMPDIR": existing}, "/tmp", "/var/tmp"},
	} {
		f := ReadSystemFacts(c.root, env(c.vars))
		if f.TmpDir != c.tmp || f.VarTmpDir != c.var_ {
			t.Errorf("%s: %%T=%q %%V=%q, want %q %q", c.name, f.TmpDir, f.VarTmpDir, c.tmp, c.var_)
		}
	}
}

func TestReadSystemFactsKernel(t *testing.T) {
	f := ReadSystemFacts(t.TempDir(), noEnv)
	if len(f.BootID) != 32 || strings.Trim(f.BootID, "0123456789abcdef") != "" {
		t.Errorf("boot ID %q: want 32 hex digits", f.BootID)
	}
	if f.Hostname == "" || f.KernelRelease == "" {
		t.Errorf("host name %q, kernel release %q: want both set", f.Hostname, f.KernelRelease)
	}
	if rel, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil && strings.TrimSpace(string(rel)) != f.KernelRelease {
		t.Errorf("kernel release %q, /proc says %q", f.KernelRelease, rel)
	}
}

func TestSystemdArch(t *testing.T) {
	for goarch, want := range map[string]string{"amd64": "x86-64", "386": "x86", "arm64": "arm64", "arm": "arm",
		"riscv64": "riscv64", "ppc64le": "ppc64-le", "s390x": "s390x", "loong64": "loongarch64"} {
		if got := SystemdArch(goarch); got != want {
			t.Errorf("SystemdArch(%s) = %q, want %q", goarch, got, want)
		}
	}
}

func TestLazySpecifiersReadOnlyForALabelWithASpecifier(t *testing.T) {
	reads := 0
	sp := LazySpecifiers(func() Specifiers {
		reads++
		return Specifiers{Values: map[byte]string{'o': "debian"}}
	})
	if got, err := sp.Expand("home"); err != nil || got != "home" || reads != 0 {
		t.Fatalf("Expand(home) = %q, %v after %d reads; want home, no error, no read", got, err, reads)
	}
	for range 2 {
		if got, err := sp.Expand("%o-home"); err != nil || got != "debian-home" {
			t.Fatalf("Expand(%%o-home) = %q, %v", got, err)
		}
	}
	if reads != 1 {
		t.Errorf("read the system %d times, want once", reads)
	}
	if _, err := sp.Expand("%z"); err == nil || reads != 1 {
		t.Errorf("an unknown specifier: err %v after %d reads; want an error and no new read", err, reads)
	}
}
