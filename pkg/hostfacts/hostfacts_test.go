package hostfacts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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

func TestReadOSRelease(t *testing.T) {
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
		f := Read(root, noEnv)
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

func TestReadMachineID(t *testing.T) {
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
		f := Read(root, noEnv)
		if f.MachineID != c.want || (f.MachineIDErr != nil) != (c.want == "") {
			t.Errorf("machine-id %q: got %q %v, want %q", c.body, f.MachineID, f.MachineIDErr, c.want)
		}
	}
	f := Read(t.TempDir(), noEnv)
	if f.MachineIDErr == nil {
		t.Errorf("no machine-id file: got %q without error", f.MachineID)
	}
}

func TestReadTmp(t *testing.T) {
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
		f := Read(c.root, env(c.vars))
		if f.TmpDir != c.tmp || f.VarTmpDir != c.var_ {
			t.Errorf("%s: %%T=%q %%V=%q, want %q %q", c.name, f.TmpDir, f.VarTmpDir, c.tmp, c.var_)
		}
	}
}

func TestReadKernel(t *testing.T) {
	f := Read(t.TempDir(), noEnv)
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
