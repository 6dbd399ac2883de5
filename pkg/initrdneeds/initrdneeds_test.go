package initrdneeds

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/pkg/encryption"
	"github.com/sprout-initrd/sprout/pkg/fstype"
	"github.com/sprout-initrd/sprout/pkg/repartd"
)

// tree writes files (path relative to root → contents) and returns root.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func load(t *testing.T, root string) Report {
	t.Helper()
	defs, err := repartd.Load(repartd.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	return ForDefinitions(defs, true)
}

func names(r Report, kind string) []string {
	var out []string
	for _, it := range r.Items {
		if it.Kind == kind {
			out = append(out, it.Name)
		}
	}
	return out
}

func uses(us []Use) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.Name+" "+filepath.Base(u.File))
	}
	return out
}

// TestReadsDefinitionsAsARunDoes: what the old sed over repart.d got
// wrong, the parser gets right — the search path's first name wins,
// drop-ins override, extension sections and continued lines are not
// settings, comments are not, and booleans are Encrypt= modes.
func TestReadsDefinitionsAsARunDoes(t *testing.T) {
	root := tree(t, map[string]string{
		// /etc wins over /usr/lib for the same name: no btrfs.
		"etc/repart.d/10-home.conf":     "[Partition]\nType=home\nFormat=ext4\n",
		"usr/lib/repart.d/10-home.conf": "[Partition]\nType=home\nFormat=btrfs\n",
		// The drop-in (from another directory of the path) replaces xfs.
		"usr/lib/repart.d/20-var.conf":                  "[Partition]\nType=var\nFormat=xfs\n",
		"usr/local/lib/repart.d/20-var.conf.d/fat.conf": "[Partition]\nFormat=vfat\n",
		// An X- section, a comment and a continued Label= hold no Format=.
		"run/repart.d/30-srv.conf": "[Partition]\nType=srv\n# Format=btrfs\nLabel=srv \\\nFormat=btrfs\n[X-Other]\nFormat=btrfs\n",
		// Encrypt=yes is key-file, with ext4 inside.
		"etc/repart.d/40-enc.conf": "[Partition]\nType=linux-generic\nEncrypt=yes\n",
		// Encrypt=no is off.
		"etc/repart.d/50-plain.conf": "[Partition]\nType=linux-generic\nEncrypt=no\nFormat=swap\n",
		// An empty file masks the name in later directories.
		"etc/repart.d/60-gone.conf":     "",
		"usr/lib/repart.d/60-gone.conf": "[Partition]\nType=linux-generic\nFormat=xfs\n",
	})
	r := load(t, root)

	var defs []string
	for _, f := range r.Definitions {
		rel, _ := filepath.Rel(root, f.Source)
		defs = append(defs, rel+" -> "+f.Target)
	}
	want := []string{
		"etc/repart.d/10-home.conf -> /etc/repart.d/10-home.conf",
		"usr/lib/repart.d/20-var.conf -> /etc/repart.d/20-var.conf",
		"usr/local/lib/repart.d/20-var.conf.d/fat.conf -> /etc/repart.d/20-var.conf.d/fat.conf",
		"run/repart.d/30-srv.conf -> /etc/repart.d/30-srv.conf",
		"etc/repart.d/40-enc.conf -> /etc/repart.d/40-enc.conf",
		"etc/repart.d/50-plain.conf -> /etc/repart.d/50-plain.conf",
	}
	if !slices.Equal(defs, want) {
		t.Errorf("definitions:\n got %q\nwant %q", defs, want)
	}
	if got, want := uses(r.Formats), []string{"ext4 10-home.conf", "vfat 20-var.conf", "ext4 40-enc.conf", "swap 50-plain.conf"}; !slices.Equal(got, want) {
		t.Errorf("formats %q, want %q", got, want)
	}
	if got, want := uses(r.Encrypt), []string{"key-file 40-enc.conf"}; !slices.Equal(got, want) {
		t.Errorf("encrypt %q, want %q", got, want)
	}
	if got, want := names(r, KindProgram), []string{"mkfs.ext4", "mke2fs", "mkfs.vfat", "cryptsetup"}; !slices.Equal(got, want) {
		t.Errorf("programs %q, want %q", got, want)
	}
	for _, m := range []string{"loop", "ext4", "vfat", "dm_crypt"} {
		if !slices.Contains(names(r, KindModule), m) {
			t.Errorf("modules %q lack %s", names(r, KindModule), m)
		}
	}
	for _, m := range []string{"xfs", "btrfs", "tpm_tis"} {
		if slices.Contains(names(r, KindModule), m) {
			t.Errorf("modules %q have %s, which no definition needs", names(r, KindModule), m)
		}
	}
	if len(names(r, KindLibrary)) != 0 {
		t.Errorf("libraries %q without Encrypt=tpm2", names(r, KindLibrary))
	}
	for _, it := range r.Items {
		if it.Name == "cryptsetup" && !strings.HasSuffix(it.Why, "40-enc.conf: Encrypt=key-file") {
			t.Errorf("cryptsetup's reason %q", it.Why)
		}
		if it.Name == "mkfs.vfat" && !strings.HasSuffix(it.Why, "20-var.conf: Format=vfat") {
			t.Errorf("mkfs.vfat's reason %q", it.Why)
		}
	}
}

// TestTPM2AndNone: tpm2 brings the libraries; no definitions bring only
// what sprout itself needs.
func TestTPM2AndNone(t *testing.T) {
	r := load(t, tree(t, map[string]string{"etc/repart.d/a.conf": "[Partition]\nType=var\nFormat=ext4\nEncrypt=key-file+tpm2\n"}))
	if got := names(r, KindLibrary); !slices.Contains(got, "libtss2-esys.so.0") || !slices.Contains(got, "cryptsetup/libcryptsetup-token-systemd-tpm2.so") {
		t.Errorf("libraries %q", got)
	}
	if got := names(r, KindProgram); !slices.Contains(got, encryption.Cryptenroll) {
		t.Errorf("programs %q lack %s", got, encryption.Cryptenroll)
	}
	none := load(t, t.TempDir())
	if len(none.Definitions) != 0 || len(none.Items) != 1 || none.Items[0].Name != "loop" {
		t.Errorf("no definitions: %+v", none)
	}
}

// TestTextFormat: the line format's fields, in order, "-" for empty
// fields, and a path a line cannot carry refused.
func TestTextFormat(t *testing.T) {
	root := tree(t, map[string]string{"etc/repart.d/a.conf": "[Partition]\nType=var\nFormat=ext4\nEncrypt=tpm2\n"})
	var b bytes.Buffer
	if err := WriteText(&b, load(t, root)); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(root, "etc/repart.d/a.conf")
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	for _, want := range []string{
		"compat\t252\t262\t" + "262",
		"definition\t" + src + "\t/etc/repart.d/a.conf",
		"format\text4\t" + src,
		"encrypt\ttpm2\t" + src,
		"program\tmkfs.ext4\te2fsprogs\te2fsprogs\te2fsprogs\t" + src + ": Format=ext4",
		"program\tsystemd-cryptenroll\tsystemd\t-\tsystemd\t" + src + ": Encrypt=tpm2",
		"library\tlibtss2-esys.so.0\tlibtss2-esys-3.0.2-0\ttpm2-tss\ttpm2-tss\t" + src + ": Encrypt=tpm2",
		"module\tloop\trequired\tsprout (formats through loop devices)",
		"module\ttpm_crb\toptional\t" + src + ": Encrypt=tpm2",
		"file\t/etc/mke2fs.conf\t" + src + ": Format=ext4",
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("no line %q in:\n%s", want, b.String())
		}
	}
	// Kinds come grouped, in the documented order.
	order := []string{"compat", "definition", "format", "encrypt", "program", "library", "module", "file"}
	last := 0
	for _, l := range lines {
		k := slices.Index(order, strings.SplitN(l, "\t", 2)[0])
		if k < last {
			t.Errorf("line %q out of order", l)
		}
		last = k
	}

	var unpinned bytes.Buffer
	if err := WriteText(&unpinned, Report{}); err != nil || strings.Contains(unpinned.String(), "compat") {
		t.Errorf("a binary without --compat= names the range: %q, %v", unpinned.String(), err)
	}

	bad := Report{Definitions: []File{{Source: "/etc/repart.d/a\tb.conf", Target: "/etc/repart.d/a\tb.conf"}}}
	if err := WriteText(&bytes.Buffer{}, bad); err == nil {
		t.Error("a path with a tab was written")
	}
}

// TestDeclarationsDocument: every format and mode is there with the
// nixpkgs attribute of each program, so the NixOS module can find them.
func TestDeclarationsDocument(t *testing.T) {
	var b bytes.Buffer
	if err := WriteDeclarations(&b, true, false); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Formats map[string]setJSON `json:"formats"`
		Encrypt map[string]setJSON `json:"encrypt"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, name := range fstype.Names() {
		s, ok := doc.Formats[name]
		if !ok {
			t.Errorf("format %s missing", name)
		}
		for _, p := range s.Programs {
			if p.Packages.Nixpkgs == "" {
				t.Errorf("format %s: %s has no nixpkgs attribute", name, p.Name)
			}
		}
	}
	for _, m := range encryption.Modes() {
		s, ok := doc.Encrypt[string(m.Mode)]
		if !ok {
			t.Errorf("Encrypt=%s missing", m.Mode)
		}
		for _, p := range append(s.Programs, s.Libraries...) {
			if p.Packages.Nixpkgs == "" {
				t.Errorf("Encrypt=%s: %s has no nixpkgs attribute", m.Mode, p.Name)
			}
		}
	}
}
