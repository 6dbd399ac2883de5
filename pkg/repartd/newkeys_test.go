package repartd

import (
	"errors"

	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/encryption"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// MountPoint= values as systemd-repart 262 reads them (observed: the
// fstab line it writes for each).
func TestMountPointFields(t *testing.T) {
	for _, c := range []struct {
		value, path string
		options     *string
	}{
		{"/home", "/home", nil},
		{"/var:x-initrd.mount,noatime", "/var", ptr("x-initrd.mount,noatime")},
		{`"/p:c":"zstd:1,noatime"`, "/p:c", ptr("zstd:1,noatime")},
		{"/q:", "/q", ptr("")},  // 262 writes "…,exec, 0 2"
		{"/r::", "/r", ptr("")}, // one ':' more at the end is tolerated
		{"/s:o1:", "/s", ptr("o1")},
		{`/s:""`, "/s", ptr("")},
		{"/a:'x'y", "/a", ptr("xy")},
		{`/a\\:b`, `/a\`, ptr("b")},
		{`/s:a\x2cb`, "/s", ptr("a,b")},
		{"//dbl//", "/dbl", nil},
		{"/y/./z", "/y/z", nil},
		{"/y/.", "/y", nil},
		{"/", "/", nil},
		{"/a#b", "/a#b", nil},
	} {
		d, _, err := parseString(t, "[Partition]\nType=home\nMountPoint="+c.value+"\n")
		if err != nil {
			t.Errorf("%s: %v", c.value, err)
			continue
		}
		if len(d.MountPoints) != 1 {
			t.Fatalf("%s: %+v", c.value, d.MountPoints)
		}
		m := d.MountPoints[0]
		if m.Path != c.path || !reflect.DeepEqual(m.Options, c.options) || !strings.HasSuffix(m.Where, ":3") {
			t.Errorf("%s: got %q %v at %s, want %q %v", c.value, m.Path, deref(m.Options), m.Where, c.path, deref(c.options))
		}
	}
	// Lines accumulate, drop-ins too.
	d, _, err := parseString(t, "[Partition]\nType=home\nMountPoint=/a\nMountPoint=/b:subvol=b\n")
	if err != nil || len(d.MountPoints) != 2 || d.MountPoints[1].Path != "/b" {
		t.Errorf("two lines: %+v %v", d.MountPoints, err)
	}
}

func TestEncryptedVolumeFields(t *testing.T) {
	for _, c := range []struct {
		value string
		want  EncryptedVolume
	}{
		{"myname", EncryptedVolume{Name: "myname"}},
		{":/etc/key", EncryptedVolume{KeyFile: "/etc/key"}},
		{"::opt1,opt2", EncryptedVolume{Options: "opt1,opt2"}},
		{"n:/k:o", EncryptedVolume{Name: "n", KeyFile: "/k", Options: "o"}},
		{"n:/k:o:", EncryptedVolume{Name: "n", KeyFile: "/k", Options: "o"}},
		{"n:-:-", EncryptedVolume{Name: "n", KeyFile: "-", Options: "-"}},
		{":", EncryptedVolume{}},
		{"-", EncryptedVolume{Name: "-"}},
	} {
		d, _, err := parseString(t, "[Partition]\nType=home\nEncrypt=key-file\nEncryptedVolume="+c.value+"\n")
		if err != nil || d.EncryptedVolume == nil {
			t.Errorf("%s: %v", c.value, err)
			continue
		}
		got := *d.EncryptedVolume
		got.Where = ""
		if got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.value, got, c.want)
		}
	}
	d, _, err := parseString(t, "[Partition]\nType=home\nEncryptedVolume=x\nEncryptedVolume=\n")
	if err != nil || d.EncryptedVolume != nil {
		t.Errorf("empty value resets: %+v %v", d.EncryptedVolume, err)
	}
}

// Format=empty, as 262 applies it: the label and NoAuto only when not set
// (in any order), no encryption; a later Format= replaces it.
func TestFormatEmpty(t *testing.T) {
	for _, c := range []struct {
		body   string
		label  *string
		noAuto Tristate
		empty  bool
	}{
		{"Format=empty\n", ptr("_empty"), TriYes, true},
		{"Label=first\nFormat=empty\n", ptr("first"), TriYes, true},
		{"Format=empty\nLabel=\n", ptr(""), TriYes, true},
		{"NoAuto=no\nFormat=empty\n", ptr("_empty"), TriNo, true},
		{"Format=empty\nFormat=ext4\n", nil, TriUnset, false},
		{"Format=ext4\nFormat=empty\nEncrypt=tpm2\n", ptr("_empty"), TriYes, true},
	} {
		d, _, err := parseString(t, "[Partition]\nType=home\n"+c.body)
		if err != nil {
			t.Fatalf("%q: %v", c.body, err)
		}
		if !reflect.DeepEqual(d.Label, c.label) || d.NoAuto != c.noAuto || d.Empty != c.empty || d.Empty && (d.Format != "" || d.Encrypt != encryption.Off) {
			t.Errorf("%q: label %v noauto %v empty %v format %q encrypt %q", c.body, deref(d.Label), d.NoAuto, d.Empty, d.Format, d.Encrypt)
		}
	}
	d, _, _ := parseString(t, "[Partition]\nType=home\nLabel=_empty\n")
	if !d.HasEmptyLabel() {
		t.Error("Label=_empty is selected by --defer-partitions-empty=")
	}
}

func TestImageKeys(t *testing.T) {
	d, _, err := parseString(t, "[Partition]\nType=root\nFormat=squashfs\nCopyFiles=/usr\nCopyFiles=/etc\nMinimize=best\nCompression=zstd\nSplitName=-\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.ImageKeys) != 5 || d.FormatKnown() {
		t.Errorf("keys %+v", d.ImageKeys)
	}
	if k, ok := d.Fills(); !ok || k.Key != "CopyFiles" || !strings.HasSuffix(k.Where, ":4") {
		t.Errorf("Fills = %+v %v", k, ok)
	}
	// Only modifiers, or the filling keys switched off: nothing fills.
	d, _, err = parseString(t, "[Partition]\nType=home\nFormat=btrfs\nCopyFiles=/etc\nCopyFiles=\nMinimize=off\nCompression=zstd\nExcludeFiles=/x\n")
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := d.Fills(); ok {
		t.Errorf("Fills = %+v", k)
	}
}

// Under --compat=, a key or value newer than the version is refused with
// file:line and the version that added it.
func TestCompatRefusesNewerKeys(t *testing.T) {
	for _, c := range []struct {
		line   string
		compat compat.Version
		want   string // "" accepted
	}{
		{"MountPoint=/home", 256, ""},
		{"MountPoint=/home", 255, "MountPoint= needs systemd-repart 256 or later, but --compat=255 follows systemd-repart 255"},
		{"Format=empty", 257, "Format=empty needs systemd-repart 258"},
		{"Format=ext4", 252, ""},
		{"VolumeLabel=x", 258, "needs systemd-repart 259"},
		{"Minimize=guess", 252, "needs systemd-repart 253"},
		{"Subvolumes=/a:nodatacow", 258, "Subvolumes=/a:nodatacow needs systemd-repart 259"},
		{"Subvolumes=/a:ro", 258, ""},
		{"EncryptedVolume=a:-:-", 259, ""},
		{"SupplementFor=x", 256, "needs systemd-repart 257"},
	} {
		dir := t.TempDir()
		writeFile(t, dir, "x.conf", "[Partition]\nType=home\n")
		writeFile(t, dir, "a.conf", "[Partition]\nType=home\n"+c.line+"\n")
		_, err := Load(Options{Dirs: []string{dir}, Compat: c.compat})
		var se *Error
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s under %d: %v", c.line, c.compat, err)
		case c.want != "" && (!errors.As(err, &se) || se.Line != 3 || !strings.Contains(err.Error(), c.want) || se.File != filepath.Join(dir, "a.conf")):
			t.Errorf("%s under %d: got %v, want %q at a.conf:3", c.line, c.compat, err, c.want)
		}
	}
}

func TestSupplementFor(t *testing.T) {
	load := func(files map[string]string) ([]Definition, error) {
		dir := t.TempDir()
		for name, body := range files {
			writeFile(t, dir, name, "[Partition]\n"+body)
		}
		return Load(Options{Dirs: []string{dir}, Compat: compat.Newest})
	}
	defs, err := load(map[string]string{"10-esp.conf": "Type=esp\n", "20-xbootldr.conf": "Type=xbootldr\nSupplementFor=10-esp\n"})
	if err != nil || SupplementTarget(defs, &defs[1]) != 0 || SupplementTarget(defs, &defs[0]) != -1 {
		t.Fatalf("%v", err)
	}
	for _, c := range []struct {
		files map[string]string
		want  string
	}{
		{map[string]string{"1.conf": "Type=esp\n", "2.conf": "Type=xbootldr\nSupplementFor=nonexist\n"}, "2.conf:3: no definition named"},
		{map[string]string{"1.conf": "Type=esp\nSupplementFor=1\n"}, "1.conf:3: no definition named"},
		{map[string]string{"1.conf": "Type=esp\n", "2.conf": "Type=xbootldr\nSupplementFor=1\n", "3.conf": "Type=srv\nSupplementFor=2\n"}, "3.conf:3: the target 2.conf is itself a supplement"},
		{map[string]string{"1.conf": "Type=esp\n", "2.conf": "Type=xbootldr\nSupplementFor=1\n", "3.conf": "Type=srv\nSupplementFor=1\n"}, "3.conf:3: the target 1.conf already has a supplement: 2.conf"},
		{map[string]string{"1.conf": "Type=esp\n", "2.conf": "Type=xbootldr\nSupplementFor=1\nEncrypt=key-file\n"}, "2.conf:3: SupplementFor= cannot be combined"},
		{map[string]string{"1.conf": "Type=esp\nEncrypt=key-file\n", "2.conf": "Type=xbootldr\nSupplementFor=1\n"}, "2.conf:3: the target 1.conf uses Encrypt="},
	} {
		_, err := load(c.files)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.files, err, c.want)
		}
	}
}
