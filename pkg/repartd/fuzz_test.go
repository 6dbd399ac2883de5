package repartd

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// FuzzParse feeds arbitrary bytes to the definitions parser as a main
// .conf file and one drop-in. Whatever the input, the parser must not
// panic; a refusal must be an *Error naming one of the two files, on a
// line that exists, in one printable line; an accepted definition must
// satisfy the invariants the planner relies on.
//
// Run longer with: go test ./pkg/repartd -run '^$' -fuzz '^FuzzParse$' -fuzztime 10m
func FuzzParse(f *testing.F) {
	for _, s := range fuzzParseSeeds {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, main, dropIn []byte) {
		const mainPath, dropPath = "/defs/10-fuzz.conf", "/defs/10-fuzz.conf.d/50-drop.conf"
		p := newParser(mainPath)
		err := p.data(mainPath, main)
		if err == nil {
			err = p.data(dropPath, dropIn)
		}
		if err == nil {
			err = p.check()
		}
		if err != nil {
			checkParseError(t, err, map[string][]byte{mainPath: main, dropPath: dropIn})
			return
		}
		checkDefinition(t, &p.def)
	})
}

// checkParseError asserts the shape of a refusal.
func checkParseError(t *testing.T, err error, files map[string][]byte) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error is not a *repartd.Error: %T %v", err, err)
	}
	data, ok := files[e.File]
	if !ok {
		t.Fatalf("error names file %q, not one of the inputs: %v", e.File, err)
	}
	// Line 0 is only for "Type= is not set" in a file without a
	// [Partition] header to point at.
	if e.Line == 0 && !(e.Key == "Type" && strings.Contains(e.Msg, "not set")) {
		t.Fatalf("error carries no line number: %v", err)
	}
	if e.Line < 0 || e.Line > len(data)+1 {
		t.Fatalf("error names line %d of a %d-byte file: %v", e.Line, len(data), err)
	}
	msg := err.Error()
	prefix := e.File + ":"
	if e.Line > 0 {
		prefix += strconv.Itoa(e.Line) + ":"
	}
	if !strings.HasPrefix(msg, prefix) {
		t.Fatalf("message does not start with %q: %q", prefix, msg)
	}
	// Quoted input is cut at 80 characters; paths and fixed text make up
	// the rest. A message that echoes a whole long line is not "one clear
	// line".
	if limit := 2*len(e.File) + 1024; len(msg) > limit {
		t.Fatalf("message is %d bytes long (limit %d): %.200q…", len(msg), limit, msg)
	}
	if bad := firstUnprintable(msg); bad >= 0 {
		t.Fatalf("message is not one printable line (byte %d: %q): %q", bad, msg[bad], msg)
	}
}

// firstUnprintable returns the offset of the first byte of s that a
// terminal would not show as text (invalid UTF-8, a control character
// other than tab), or -1.
func firstUnprintable(s string) int {
	for i, r := range s {
		if r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD") || unicode.IsControl(r) && r != '\t' {
			return i // invalid UTF-8 (a literal U+FFFD is fine) or a control character
		}
	}
	return -1
}

// checkDefinition asserts what the planner assumes of a parsed definition.
func checkDefinition(t *testing.T, d *Definition) {
	t.Helper()
	if d.Type == uuid.Nil {
		t.Fatalf("accepted a definition without a type: %+v", d)
	}
	if d.Weight > MaxWeight || d.PaddingWeight > MaxWeight {
		t.Fatalf("weights out of range: %d %d", d.Weight, d.PaddingWeight)
	}
	for name, v := range map[string]uint64{"SizeMin": d.SizeMin, "SizeMax": d.SizeMax, "PaddingMin": d.PaddingMin, "PaddingMax": d.PaddingMax} {
		if v != Unset && v%4096 != 0 {
			t.Fatalf("%s=%d is not a multiple of 4096", name, v)
		}
	}
	if d.SizeMin != Unset && d.SizeMax != Unset && d.SizeMin > d.SizeMax {
		t.Fatalf("SizeMin %d > SizeMax %d accepted", d.SizeMin, d.SizeMax)
	}
	if d.PaddingMin != Unset && d.PaddingMax != Unset && d.PaddingMin > d.PaddingMax {
		t.Fatalf("PaddingMin %d > PaddingMax %d accepted", d.PaddingMin, d.PaddingMax)
	}
	if d.Label != nil {
		l := *d.Label
		if len(l) > MaxLabelBytes || !utf8.ValidString(l) || strings.ContainsRune(l, 0) {
			t.Fatalf("accepted a label that does not fit a GPT name: %q", l)
		}
	}
	if d.Format != "" && (strings.ContainsAny(d.Format, "/ \t") || d.Empty) {
		t.Fatalf("accepted Format=%q (empty %v)", d.Format, d.Empty)
	}
	for _, m := range d.MountPoints {
		if !strings.HasPrefix(m.Path, "/") || strings.Contains(m.Path, "/../") || strings.ContainsAny(m.Path, " \t\n") {
			t.Fatalf("accepted a mount point that breaks an fstab line: %q", m.Path)
		}
	}
	for key, where := range d.Lines {
		if _, ok := keys[key]; !ok {
			t.Fatalf("Lines has key %q that is not a setting", key)
		}
		file, line := splitWhere(where)
		if line <= 0 || (file != d.Path && !strings.HasPrefix(file, d.Path+".d/")) {
			t.Fatalf("Lines[%q] = %q is not file:line of an input", key, where)
		}
	}
}

// fuzzParseSeeds are {main file, drop-in} pairs covering every setting,
// the unit-file syntax corners and known refusals. The committed corpus in
// testdata/fuzz/FuzzParse holds more.
var fuzzParseSeeds = [][2]string{
	{"[Partition]\nType=home\n", ""},
	{"# EFI system partition\n[Partition]\nType=esp\nFormat=vfat\nSizeMinBytes=64M\nSizeMaxBytes=64M\n", ""},
	{"[Partition]\nType=root\nLabel=store\nReadOnly=yes\nSizeMinBytes=512M\nSizeMaxBytes=512M\n", ""},
	{"[Partition]\nType=var\nFormat=ext4\nWeight=1000\n", "[Partition]\nSizeMinBytes=1G\n"},
	{"[Partition]\nType=home\nFormat=ext4\nWeight=2000\nPaddingWeight=10\nPaddingMinBytes=1M\nPaddingMaxBytes=2M\n", ""},
	{"[Partition]\nType=swap\nUUID=01234567-89ab-cdef-0123-456789abcdef\nPriority=-5\nFlags=0x8000000000000000\n", ""},
	{"[Partition]\nType=root-x86-64\nNoAuto=yes\nGrowFileSystem=off\nFactoryReset=1\nUUID=null\n", ""},
	{"\xef\xbb\xbf[Partition]\r\nType=linux-generic\r\nLabel=a%%b\r\n", ""},
	{"[Partition]\nType=home\nLabel=very \\\n  long \\\n# comment inside\n  label\n", ""},
	{"[X-Vendor]\nAnything=goes\n[Partition]\nType=srv\nX-Extension=1\n", ""},
	{"[Partition]\nType=4f68bce3e8cd4db196e7fbcaf984b709\nSizeMinBytes=1.5G 512M\nSizeMaxBytes=15E\n", ""},
	{"[Partition]\nType=home\nSizeMinBytes=2G\nSizeMaxBytes=1G\n", ""},
	{"[Partition]\nType=home\nWeight=1000001\n", ""},
	{"[Partition]\nType=home\nSizeMinBytes=-1\n", ""},
	{"[Partition]\nType=home\nCopyBlocks=auto\n", ""},
	{"[Partition]\nType=home\nEncrypt=tpm2\nVerity=data\n", ""},
	{"[Partition]\nType=nonsense\n", ""},
	{"[Partition]\nType=home\nFormat=ntfs\n", ""},
	{"[Partition]\nType=home\nUUID=not-a-uuid\n", ""},
	{"[Partition]\nType=home\nLabel=0123456789012345678901234567890123456\n", ""},
	{"[Partition]\nType=home\nLabel=%m\n", ""},
	{"[Partition]\nType=home\nFormat=empty\nMountPoint=/home:x-initrd.mount\nMountPoint=\"/a:b\":'o'\n", ""},
	{"[Partition]\nType=var\nEncrypt=tpm2\nEncryptedVolume=var::tpm2-device=auto\nVolumeLabel=v\n", ""},
	{"[Partition]\nType=home\nFormat=btrfs\nSubvolumes=/@ /@home:ro,nodatacow\nDefaultSubvolume=/@\n", ""},
	{"[Partition]\nType=xbootldr\nSupplementFor=10-esp\nCopyFiles=/boot\nMinimize=guess\n", ""},
	{"[Partition\nType=home\n", ""},
	{"Type=home\n[Partition]\n", ""},
	{"[Install]\nWantedBy=x\n", ""},
	{"[Partition]\nType home\n", ""},
	{"[Partition]\n=home\n", ""},
	{"[Partition]\nType=home\nLabel=\xff\xfe\n", ""},
	{"[Partition]\nType=home\nPriority=0x7fffffff\nWeight=0b11\nPaddingWeight=0o17\n", ""},
	{"[Partition]\nType=home\n", "[Partition]\nType=\n"},
	{"", "[Partition]\nType=home\n"},
	{"[Partition]\nType=home\x00Label=nul\rFormat=ext4\n\r\x00", ""},
}
