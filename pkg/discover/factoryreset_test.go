package discover

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"
)

// efiString encodes a value as efivarfs shows a UTF-16 string variable:
// 4 attribute bytes, the text, a NUL.
func efiString(s string, nul bool) string {
	b := []byte{7, 0, 0, 0}
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	if nul {
		b = append(b, 0, 0)
	}
	return string(b)
}

func TestFactoryResetRequest(t *testing.T) {
	for _, c := range []struct {
		name, cmdline, efi string // efi "" = variable absent
		want               bool
		source, errText    string
	}{
		{"nothing", "console=ttyS0", "", false, "", ""},
		{"cmdline bare", "quiet systemd.factory_reset", "", true, "kernel command line", ""},
		{"cmdline 1", "systemd.factory_reset=1", "", true, "kernel command line", ""},
		{"cmdline yes", "systemd.factory_reset=yes ro", "", true, "kernel command line", ""},
		{"cmdline off wins over EFI", "systemd.factory_reset=0", efiString("1", true), false, "kernel command line", ""},
		{"cmdline junk", "systemd.factory_reset=maybe", "", false, "", "not a boolean"},
		{"rd. prefix is another key", "rd.systemd.factory_reset=1", "", false, "", ""},
		{"EFI yes", "console=ttyS0", efiString("yes", true), true, "EFI variable", ""},
		{"EFI 1 without NUL", "console=ttyS0", efiString("1", false), true, "EFI variable", ""},
		{"EFI 0", "console=ttyS0", efiString("0", true), false, "EFI variable", ""},
		{"EFI junk", "console=ttyS0", efiString("please", true), false, "", "not a boolean"},
		{"EFI malformed", "console=ttyS0", "\x07\x00\x00\x00\x31", false, "", "malformed"},
	} {
		f := newFake(t)
		f.cmdline(c.cmdline)
		if c.efi != "" {
			f.write("sys/firmware/efi/efivars/"+FactoryResetVar, c.efi)
		}
		got, source, err := FactoryResetRequest(f.env, false)
		if c.errText != "" {
			if err == nil || !strings.Contains(err.Error(), c.errText) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.errText)
			}
			continue
		}
		if err != nil || got != c.want || !strings.Contains(source, c.source) || (c.source == "") != (source == "") {
			t.Errorf("%s: got %v %q %v, want %v from %q", c.name, got, source, err, c.want, c.source)
		}
	}
}

func TestRemoveFactoryResetVar(t *testing.T) {
	f := newFake(t)
	f.write("sys/firmware/efi/efivars/"+FactoryResetVar, efiString("1", true))
	if err := RemoveFactoryResetVar(f.env); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(f.env.EFIVars, FactoryResetVar)); !os.IsNotExist(err) {
		t.Errorf("variable still there: %v", err)
	}
	// Absent: no error (a second run, or not booted with UEFI).
	if err := RemoveFactoryResetVar(f.env); err != nil {
		t.Errorf("absent variable: %v", err)
	}
	if got, _, err := FactoryResetRequest(f.env, false); got || err != nil {
		t.Errorf("after removal: requested %v, %v", got, err)
	}
}

// TestFactoryResetRequestVar: FactoryResetRequest as systemd-repart 262
// honours it (each case observed on 262 with a fake efivarfs): a JSON
// request of this OS (ID=, IMAGE_ID=) from another boot. The old
// FactoryReset variable means nothing then.
func TestFactoryResetRequestVar(t *testing.T) {
	const other = "00000000000000000000000000000001"
	for _, c := range []struct {
		name, osRelease, cmdline string
		vars                     map[string]string // efivarfs file → content
		want                     bool
		source, errText          string
	}{
		{name: "nothing"},
		{name: "a request from another boot", vars: map[string]string{FactoryResetRequestVar: efiString(`{"osReleaseId":"debian","bootId":"`+other+`"}`, true)},
			want: true, source: "EFI variable FactoryResetRequest (made in boot " + other + ")"},
		{name: "without NUL, with more fields", vars: map[string]string{FactoryResetRequestVar: efiString(`{"osReleaseId":"debian","bootId":"`+other+`","x":5}`, false)},
			want: true, source: "FactoryResetRequest"},
		{name: "made in this boot", vars: map[string]string{FactoryResetRequestVar: efiString(`{"osReleaseId":"debian","bootId":"`+strings.ReplaceAll(thisBoot, "-", "")+`"}`, true)},
			errText: "made in this boot"},
		{name: "this boot with dashes", vars: map[string]string{FactoryResetRequestVar: efiString(`{"osReleaseId":"debian","bootId":"`+thisBoot+`"}`, true)},
			errText: "made in this boot"},
		{name: "another OS", vars: map[string]string{FactoryResetRequestVar: efiString(`{"osReleaseId":"fedora","bootId":"`+other+`"}`, true)},
			errText: "asks another OS (ID=fedora IMAGE_ID=) for a reset; this is ID=debian"},
		{name: "an image ID this OS does not have", vars: map[string]string{FactoryResetRequestVar: efiString(`{"osReleaseId":"debian","osReleaseImageId":"app","bootId":"`+other+`"}`, true)},
			errText: "another OS"},
		{name: "no image ID, this OS has one", osRelease: "ID=debian\nIMAGE_ID=app\n",
			vars: map[string]string{FactoryResetRequestVar: efiString(`{"osReleaseId":"debian","bootId":"`+other+`"}`, true)}, errText: "another OS"},
		{name: "the same image ID", osRelease: "ID=debian\nIMAGE_ID=app\n",
			vars: map[string]string{FactoryResetRequestVar: efiString(`{"osReleaseId":"debian","osReleaseImageId":"app","bootId":"`+other+`"}`, true)}, want: true, source: "FactoryResetRequest"},
		{name: "no boot ID", vars: map[string]string{FactoryResetRequestVar: efiString(`{"osReleaseId":"debian"}`, true)}, errText: "names no OS or boot"},
		{name: "no OS", vars: map[string]string{FactoryResetRequestVar: efiString(`{"bootId":"`+other+`"}`, true)}, errText: "names no OS or boot"},
		{name: "not a boot ID", vars: map[string]string{FactoryResetRequestVar: efiString(`{"osReleaseId":"debian","bootId":"not-an-id"}`, true)}, errText: "is not a boot ID"},
		{name: "yes is not a request", vars: map[string]string{FactoryResetRequestVar: efiString("yes", true)}, errText: "not the JSON"},
		{name: "the old variable is ignored", vars: map[string]string{FactoryResetVar: efiString("yes", true)}},
		{name: "the command line still decides", cmdline: "systemd.factory_reset=0",
			vars: map[string]string{FactoryResetRequestVar: efiString(`{"osReleaseId":"debian","bootId":"`+other+`"}`, true)}, source: "kernel command line"},
		{name: "the command line alone", cmdline: "systemd.factory_reset=1", want: true, source: "kernel command line"},
	} {
		f := newFake(t)
		if c.osRelease != "" {
			f.write("etc/os-release", c.osRelease)
		}
		f.cmdline("console=ttyS0 " + c.cmdline)
		for name, v := range c.vars {
			f.write("sys/firmware/efi/efivars/"+name, v)
		}
		got, source, err := FactoryResetRequest(f.env, true)
		if c.errText != "" {
			if got || err == nil || !strings.Contains(err.Error(), c.errText) {
				t.Errorf("%s: %v %v, want the error %q", c.name, got, err, c.errText)
			}
			continue
		}
		if err != nil || got != c.want || !strings.Contains(source, c.source) || (c.source == "") != (source == "") {
			t.Errorf("%s: got %v %q %v, want %v from %q", c.name, got, source, err, c.want, c.source)
		}
	}
}

func TestInInitrd(t *testing.T) {
	t.Setenv("SYSTEMD_IN_INITRD", "1")
	if !InInitrd() {
		t.Errorf("SYSTEMD_IN_INITRD=1: not in the initrd")
	}
	t.Setenv("SYSTEMD_IN_INITRD", "no")
	if InInitrd() {
		t.Errorf("SYSTEMD_IN_INITRD=no: in the initrd")
	}
}

// --factory-reset= decides alone; without it only the initrd asks the
// system.
func TestFactoryResetRequested(t *testing.T) {
	f := newFake(t)
	f.cmdline("systemd.factory_reset=1")
	yes, no := true, false
	t.Setenv("SYSTEMD_IN_INITRD", "1")
	for _, c := range []struct {
		name string
		flag *bool
		want ResetRequest
	}{
		{"flag yes", &yes, ResetRequest{Yes: true}},
		{"flag no", &no, ResetRequest{}},
		{"no flag, in the initrd", nil, ResetRequest{Yes: true, Source: "the kernel command line (systemd.factory_reset=1)"}},
	} {
		if got, err := FactoryResetRequested(f.env, c.flag, 252); err != nil || got != c.want {
			t.Errorf("%s: %+v, %v; want %+v", c.name, got, err, c.want)
		}
	}
	t.Setenv("SYSTEMD_IN_INITRD", "0")
	if got, err := FactoryResetRequested(f.env, nil, 252); err != nil || got != (ResetRequest{}) {
		t.Errorf("outside the initrd: %+v, %v; want no request", got, err)
	}
}
