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
		got, source, err := FactoryResetRequest(f.env)
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
	if got, _, err := FactoryResetRequest(f.env); got || err != nil {
		t.Errorf("after removal: requested %v, %v", got, err)
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
		if got, err := FactoryResetRequested(f.env, c.flag); err != nil || got != c.want {
			t.Errorf("%s: %+v, %v; want %+v", c.name, got, err, c.want)
		}
	}
	t.Setenv("SYSTEMD_IN_INITRD", "0")
	if got, err := FactoryResetRequested(f.env, nil); err != nil || got != (ResetRequest{}) {
		t.Errorf("outside the initrd: %+v, %v; want no request", got, err)
	}
}
