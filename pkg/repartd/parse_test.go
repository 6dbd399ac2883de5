package repartd

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/encryption"
	"github.com/sprout-initrd/sprout/pkg/parttype"
)

// writeFile creates dir/name with body (and the directories above it).
func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func parseString(t *testing.T, body string) (Definition, string, error) {
	t.Helper()
	path := writeFile(t, t.TempDir(), "10-test.conf", body)
	d, err := Parse(path, nil)
	return d, path, err
}

func ptr[T any](v T) *T { return &v }

var (
	homeGUID = uuid.MustParse("933ac7e1-2eb4-4f13-b844-0e14e2aef915")
	espGUID  = uuid.MustParse("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
)

func TestParseDefaults(t *testing.T) {
	d, path, err := parseString(t, "[Partition]\nType=home\n")
	if err != nil {
		t.Fatal(err)
	}
	want := Definition{
		File: "10-test.conf", Path: path, Type: homeGUID,
		Weight: 1000, PaddingWeight: 0,
		SizeMin: Unset, SizeMax: Unset, PaddingMin: Unset, PaddingMax: Unset,
		NoAuto: TriUnset, ReadOnly: TriUnset, GrowFileSystem: TriUnset,
		Lines: map[string]string{"Type": path + ":2"},
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("got  %+v\nwant %+v", d, want)
	}
	if d.Where("Type") != path+":2" || d.Where("Label") != path {
		t.Errorf("Where: %q %q", d.Where("Type"), d.Where("Label"))
	}
}

// TestParseKeys covers every supported key: each case is appended to
// "[Partition]\nType=home\n" and check inspects the result.
func TestParseKeys(t *testing.T) {
	root, _ := parttype.Lookup("root")
	tests := []struct {
		body  string
		check func(d Definition) bool
	}{
		{"Type=esp", func(d Definition) bool { return d.Type == espGUID }},
		{"Type=root", func(d Definition) bool { return d.Type == root }},
		{"Type=C12A7328F81F11D2BA4B00A0C93EC93B", func(d Definition) bool { return d.Type == espGUID }},
		{"Type=12345678-1234-1234-1234-123456789abc", func(d Definition) bool {
			return d.Type == uuid.MustParse("12345678-1234-1234-1234-123456789abc")
		}},
		{"Type=esp\nType=home", func(d Definition) bool { return d.Type == homeGUID }},

		{"Label=data", func(d Definition) bool { return *d.Label == "data" }},
		{"Label=", func(d Definition) bool { return d.Label != nil && *d.Label == "" }},
		{"Label=  two  words  ", func(d Definition) bool { return *d.Label == "two  words" }},
		{`Label="quoted"`, func(d Definition) bool { return *d.Label == `"quoted"` }},
		{`Label=back\slash`, func(d Definition) bool { return *d.Label == `back\slash` }},
		{"Label=a%%b", func(d Definition) bool { return *d.Label == "a%b" }},
		{"Label=100%", func(d Definition) bool { return *d.Label == "100%" }},
		{"Label=%%%", func(d Definition) bool { return *d.Label == "%%" }},
		{"Label=" + strings.Repeat("x", 36), func(d Definition) bool { return len(*d.Label) == 36 }},
		{"Label=" + strings.Repeat("x", 35) + "%%", func(d Definition) bool { return len(*d.Label) == 36 }},
		{"Label=" + strings.Repeat("é", 18), func(d Definition) bool { return *d.Label == strings.Repeat("é", 18) }},
		{"Label=" + strings.Repeat("😀", 9), func(d Definition) bool { return *d.Label == strings.Repeat("😀", 9) }},
		{"Label=a\tb\x01", func(d Definition) bool { return *d.Label == "a\tb\x01" }},
		{"Label=first\nLabel=second", func(d Definition) bool { return *d.Label == "second" }},

		// Encrypt=off and the false booleans (252 reads them as off)
		// change nothing; a true boolean is key-file; an encrypted
		// partition without Format= gets ext4, as in 252.
		{"Encrypt=off", func(d Definition) bool { return d.Encrypt == encryption.Off && d.Format == "" }},
		{"Encrypt=no", func(d Definition) bool { return d.Encrypt == encryption.Off && d.Format == "" }},
		{"Encrypt=0", func(d Definition) bool { return d.Encrypt == encryption.Off && d.Format == "" }},
		{"Encrypt=false", func(d Definition) bool { return d.Encrypt == encryption.Off && d.Format == "" }},
		{"Encrypt=yes", func(d Definition) bool { return d.Encrypt == encryption.KeyFile && d.Format == "ext4" }},
		{"Encrypt=key-file", func(d Definition) bool { return d.Encrypt == encryption.KeyFile && d.Format == "ext4" }},
		{"Encrypt=tpm2", func(d Definition) bool { return d.Encrypt == encryption.TPM2 && d.Format == "ext4" }},
		{"Encrypt=key-file+tpm2\nFormat=xfs", func(d Definition) bool { return d.Encrypt == encryption.KeyFileTPM2 && d.Format == "xfs" }},
		{"Encrypt=tpm2\nEncrypt=off", func(d Definition) bool { return d.Encrypt == encryption.Off && d.Format == "" }},

		// TPM2PCRs= (259): numbers or names, "+" or ",", in ascending
		// order; empty is no PCRs (262 binds none), unset is nil.
		{"Encrypt=tpm2", func(d Definition) bool { return d.TPM2PCRs == nil }},
		{"TPM2PCRs=7", func(d Definition) bool { return *d.TPM2PCRs == "7" }},
		{"TPM2PCRs=7,1", func(d Definition) bool { return *d.TPM2PCRs == "1+7" }},
		{"TPM2PCRs=secure-boot-policy+boot-loader-code", func(d Definition) bool { return *d.TPM2PCRs == "4+7" }},
		{"TPM2PCRs=7+7+kernel-boot", func(d Definition) bool { return *d.TPM2PCRs == "7+11" }},
		{"TPM2PCRs=", func(d Definition) bool { return d.TPM2PCRs != nil && *d.TPM2PCRs == "" }},
		{"TPM2PCRs=7\nTPM2PCRs=", func(d Definition) bool { return *d.TPM2PCRs == "" }},
		// KeyFile= (259) is read now; empty goes back to --key-file=.
		{"KeyFile=/dev/null", func(d Definition) bool { return d.KeyFile == "/dev/null" }},
		{"KeyFile=/dev/null\nKeyFile=", func(d Definition) bool { return d.KeyFile == "" }},

		{"UUID=01234567-89ab-cdef-0123-456789abcdef", func(d Definition) bool {
			return *d.UUID == uuid.MustParse("01234567-89ab-cdef-0123-456789abcdef")
		}},
		{"UUID=0123456789ABCDEF0123456789ABCDEF", func(d Definition) bool {
			return *d.UUID == uuid.MustParse("01234567-89ab-cdef-0123-456789abcdef")
		}},
		{"UUID=null", func(d Definition) bool { return d.UUID != nil && *d.UUID == uuid.Nil }},
		{"UUID=00000000-0000-0000-0000-000000000000", func(d Definition) bool { return d.UUID != nil && *d.UUID == uuid.Nil }},
		{"UUID=0123456789abcdef0123456789abcdef\nUUID=", func(d Definition) bool { return d.UUID == nil }},

		{"Priority=-5", func(d Definition) bool { return d.Priority == -5 }},
		{"Priority=010", func(d Definition) bool { return d.Priority == 8 }},
		{"Priority=0x7fffffff", func(d Definition) bool { return d.Priority == 2147483647 }},
		{"Priority=-2147483648", func(d Definition) bool { return d.Priority == -2147483648 }},

		{"Weight=0", func(d Definition) bool { return d.Weight == 0 }},
		{"Weight=2000", func(d Definition) bool { return d.Weight == 2000 }},
		{"Weight=1000000", func(d Definition) bool { return d.Weight == 1000000 }},
		{"Weight=0x10", func(d Definition) bool { return d.Weight == 16 }},
		{"PaddingWeight=500", func(d Definition) bool { return d.PaddingWeight == 500 && d.Weight == 1000 }},
		{"PaddingWeight=1000000", func(d Definition) bool { return d.PaddingWeight == 1000000 }},

		{"SizeMinBytes=15000000", func(d Definition) bool { return d.SizeMin == 14999552 }},
		{"SizeMaxBytes=15000000", func(d Definition) bool { return d.SizeMax == 15003648 }},
		{"SizeMinBytes=15000000\nSizeMaxBytes=15000000", func(d Definition) bool {
			return d.SizeMin == 14999552 && d.SizeMax == 15003648
		}},
		{"SizeMinBytes=5000\nSizeMaxBytes=4097", func(d Definition) bool { return d.SizeMin == 4096 && d.SizeMax == 8192 }},
		{"SizeMinBytes=0", func(d Definition) bool { return d.SizeMin == 0 }},
		{"SizeMaxBytes=1.5M", func(d Definition) bool { return d.SizeMax == 1572864 }},
		{"SizeMaxBytes=1", func(d Definition) bool { return d.SizeMax == 4096 }},
		{"SizeMaxBytes=18446744073709551615", func(d Definition) bool { return d.SizeMax == Unset }},
		{"SizeMaxBytes=18446744073709549568", func(d Definition) bool { return d.SizeMax == Unset }},
		{"SizeMinBytes=18446744073709551615", func(d Definition) bool { return d.SizeMin == 18446744073709547520 }},
		{"SizeMinBytes=1E\nSizeMaxBytes=1E", func(d Definition) bool { return d.SizeMin == 1<<60 && d.SizeMax == 1<<60 }},
		{"PaddingMinBytes=33M", func(d Definition) bool { return d.PaddingMin == 33<<20 }},
		{"PaddingMinBytes=5000", func(d Definition) bool { return d.PaddingMin == 4096 }},
		{"PaddingMaxBytes=4097", func(d Definition) bool { return d.PaddingMax == 8192 }},
		{"PaddingMinBytes=9000\nPaddingMaxBytes=4097", func(d Definition) bool { return d.PaddingMin == 8192 && d.PaddingMax == 8192 }},

		{"Format=ext4", func(d Definition) bool { return d.Format == "ext4" }},
		{"Format=ext2", func(d Definition) bool { return d.Format == "ext2" }},
		{"Format=ext3", func(d Definition) bool { return d.Format == "ext3" }},
		{"Format=vfat", func(d Definition) bool { return d.Format == "vfat" }},
		{"Format=swap", func(d Definition) bool { return d.Format == "swap" }},
		{"Format=xfs", func(d Definition) bool { return d.Format == "xfs" }},
		{"Format=btrfs", func(d Definition) bool { return d.Format == "btrfs" }},

		{"Flags=0", func(d Definition) bool { return d.Flags != nil && *d.Flags == 0 }},
		{"Flags=0x8000000000000000", func(d Definition) bool { return *d.Flags == 1<<63 }},
		{"Flags=9223372036854775808", func(d Definition) bool { return *d.Flags == 1<<63 }},
		{"Flags=18446744073709551615", func(d Definition) bool { return *d.Flags == 1<<64-1 }},
		{"Flags=0b101", func(d Definition) bool { return *d.Flags == 5 }},

		{"NoAuto=yes", func(d Definition) bool { return d.NoAuto == TriYes }},
		{"NoAuto=off", func(d Definition) bool { return d.NoAuto == TriNo }},
		{"NoAuto=yes\nNoAuto=", func(d Definition) bool { return d.NoAuto == TriUnset && !d.NoAuto.Set() }},
		{"ReadOnly=1", func(d Definition) bool { return d.ReadOnly == TriYes && d.ReadOnly.Set() }},
		{"ReadOnly=FALSE", func(d Definition) bool { return d.ReadOnly == TriNo }},
		{"ReadOnly=", func(d Definition) bool { return d.ReadOnly == TriUnset }},
		{"GrowFileSystem=t", func(d Definition) bool { return d.GrowFileSystem == TriYes }},
		{"GrowFileSystem=n", func(d Definition) bool { return d.GrowFileSystem == TriNo }},
		{"FactoryReset=yes", func(d Definition) bool { return d.FactoryReset }},
		{"FactoryReset=yes\nFactoryReset=no", func(d Definition) bool { return !d.FactoryReset }},

		// Extension keys and sections are ignored, as systemd ignores them.
		{"X-Sprout-Note=anything", func(d Definition) bool { return len(d.Lines) == 1 }},
		{"[X-Other]\nFoo=bar\nCopyBlocks=x\n[Partition]\nLabel=after", func(d Definition) bool { return *d.Label == "after" }},
		// Several [Partition] sections merge.
		{"[Partition]\nLabel=again", func(d Definition) bool { return *d.Label == "again" && d.Type == homeGUID }},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.body, "\n", `\n`), func(t *testing.T) {
			d, _, err := parseString(t, "[Partition]\nType=home\n"+tt.body+"\n")
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(d) {
				t.Errorf("unexpected result %+v (label %v, uuid %v, flags %v)", d, deref(d.Label), deref(d.UUID), deref(d.Flags))
			}
		})
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestParseLines(t *testing.T) {
	d, path, err := parseString(t, "# c\n[Partition]\nType=home\nLabel=a\\\n b\n\nWeight=5\nWeight=6\n")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"Type": path + ":3", "Label": path + ":4", "Weight": path + ":8"}
	if !reflect.DeepEqual(d.Lines, want) {
		t.Errorf("Lines = %v, want %v", d.Lines, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		line int
		key  string
		msg  string
	}{
		{"no Type", "[Partition]\nLabel=x\n", 1, "Type", "Type= is not set"},
		{"no Type no section", "# only a comment\n", 0, "Type", "Type= is not set"},
		{"no Type after header on line 3", "\n\n[Partition]\n", 3, "Type", "Type= is not set"},
		{"Type empty", "[Partition]\nType=\n", 2, "Type", "invalid value for Type="},
		{"Type unknown name", "[Partition]\nType=ESP\n", 2, "Type", `"ESP"`},
		{"Type all-zero", "[Partition]\nType=00000000-0000-0000-0000-000000000000\n", 2, "Type", "all-zero"},
		{"Type braces", "[Partition]\nType={c12a7328-f81f-11d2-ba4b-00a0c93ec93b}\n", 2, "Type", "invalid value"},

		{"Label too long", "[Partition]\nType=home\nLabel=" + strings.Repeat("x", 37) + "\n", 3, "Label", "37 bytes"},
		{"Label too long in bytes", "[Partition]\nType=home\nLabel=" + strings.Repeat("é", 18) + "x\n", 3, "Label", "37 bytes"},
		{"Label emoji too long", "[Partition]\nType=home\nLabel=" + strings.Repeat("😀", 9) + "x\n", 3, "Label", "37 bytes"},
		{"Label %% makes it too long", "[Partition]\nType=home\nLabel=" + strings.Repeat("x", 36) + "%%\n", 3, "Label", "37 bytes"},
		{"Label unknown specifier", "[Partition]\nType=home\nLabel=%z\n", 3, "Label", "unknown specifier %z"},
		{"Label unknown specifier after %%", "[Partition]\nType=home\nLabel=%%%q\n", 3, "Label", "unknown specifier %q"},
		{"Label unknown after known specifier", "[Partition]\nType=home\nLabel=%a%Z\n", 3, "Label", "unknown specifier %Z"},
		{"Label unknown multibyte specifier", "[Partition]\nType=home\nLabel=%é\n", 3, "Label", "unknown specifier %é"},
		{"Label invalid UTF-8", "[Partition]\nType=home\nLabel=a\xffb\n", 3, "", "UTF-8"},

		{"UUID junk", "[Partition]\nType=home\nUUID=xyz\n", 3, "UUID", `"xyz"`},
		{"UUID NULL", "[Partition]\nType=home\nUUID=NULL\n", 3, "UUID", "invalid value"},
		{"UUID braces", "[Partition]\nType=home\nUUID={01234567-89ab-cdef-0123-456789abcdef}\n", 3, "UUID", "invalid value"},
		{"UUID partial dashes", "[Partition]\nType=home\nUUID=01234567-89abcdef-0123-456789abcdef\n", 3, "UUID", "invalid value"},

		{"Priority empty", "[Partition]\nType=home\nPriority=\n", 3, "Priority", "invalid value"},
		{"Priority too big", "[Partition]\nType=home\nPriority=2147483648\n", 3, "Priority", "out of range"},
		{"Priority too small", "[Partition]\nType=home\nPriority=-2147483649\n", 3, "Priority", "out of range"},
		{"Priority junk", "[Partition]\nType=home\nPriority=high\n", 3, "Priority", `"high"`},
		{"Weight empty", "[Partition]\nType=home\nWeight=\n", 3, "Weight", "invalid value"},
		{"Weight too big", "[Partition]\nType=home\nWeight=1000001\n", 3, "Weight", "between 0 and 1000000"},
		{"Weight negative", "[Partition]\nType=home\nWeight=-1\n", 3, "Weight", "out of range"},
		{"Weight float", "[Partition]\nType=home\nWeight=1.5\n", 3, "Weight", "invalid syntax"},
		{"Weight octal junk", "[Partition]\nType=home\nWeight=08\n", 3, "Weight", "invalid syntax"},
		{"PaddingWeight too big", "[Partition]\nType=home\nPaddingWeight=4294967296\n", 3, "PaddingWeight", "out of range"},

		{"SizeMinBytes empty", "[Partition]\nType=home\nSizeMinBytes=\n", 3, "SizeMinBytes", "not a size"},
		{"SizeMaxBytes junk", "[Partition]\nType=home\nSizeMaxBytes=10 MB\n", 3, "SizeMaxBytes", `"10 MB"`},
		{"SizeMaxBytes negative", "[Partition]\nType=home\nSizeMaxBytes=-1M\n", 3, "SizeMaxBytes", "out of range"},
		{"SizeMaxBytes overflow", "[Partition]\nType=home\nSizeMaxBytes=16E\n", 3, "SizeMaxBytes", "out of range"},
		{"PaddingMinBytes lower-case suffix", "[Partition]\nType=home\nPaddingMinBytes=1k\n", 3, "PaddingMinBytes", "invalid syntax"},
		{"PaddingMaxBytes empty", "[Partition]\nType=home\nPaddingMaxBytes=\n", 3, "PaddingMaxBytes", "not a size"},
		{"SizeMin > SizeMax", "[Partition]\nType=home\nSizeMinBytes=20M\nSizeMaxBytes=10M\n", 3, "SizeMinBytes", "larger than SizeMaxBytes="},
		{"SizeMin > SizeMax after rounding", "[Partition]\nType=home\nSizeMaxBytes=4096\nSizeMinBytes=8192\n", 4, "SizeMinBytes", "8192"},
		{"PaddingMin > PaddingMax", "[Partition]\nType=home\nPaddingMinBytes=1G\nPaddingMaxBytes=1M\n", 3, "PaddingMinBytes", "larger than PaddingMaxBytes="},

		{"Format empty", "[Partition]\nType=home\nFormat=\n", 3, "Format", "ext2, ext3, ext4, vfat, swap, xfs, btrfs"},
		{"Format path", "[Partition]\nType=home\nFormat=a/b\n", 3, "Format", "not a file system name"},
		{"Flags empty", "[Partition]\nType=home\nFlags=\n", 3, "Flags", "invalid value"},
		{"Flags negative", "[Partition]\nType=home\nFlags=-1\n", 3, "Flags", "out of range"},
		{"Flags overflow", "[Partition]\nType=home\nFlags=18446744073709551616\n", 3, "Flags", "out of range"},
		{"NoAuto junk", "[Partition]\nType=home\nNoAuto=2\n", 3, "NoAuto", "not a boolean"},
		{"ReadOnly junk", "[Partition]\nType=home\nReadOnly=maybe\n", 3, "ReadOnly", "not a boolean"},
		{"GrowFileSystem junk", "[Partition]\nType=home\nGrowFileSystem=enable\n", 3, "GrowFileSystem", "not a boolean"},
		{"FactoryReset empty", "[Partition]\nType=home\nFactoryReset=\n", 3, "FactoryReset", "not a boolean"},
		{"TPM2PCRs out of range", "[Partition]\nType=home\nTPM2PCRs=24\n", 3, "TPM2PCRs", "not a PCR number (0–23)"},
		{"TPM2PCRs unknown name", "[Partition]\nType=home\nTPM2PCRs=7+foo\n", 3, "TPM2PCRs", `"foo" is neither a PCR number`},
		{"TPM2PCRs with a value", "[Partition]\nType=home\nTPM2PCRs=7:sha256=00\n", 3, "TPM2PCRs", "not PCR values or banks"},
		{"TPM2PCRs only separators", "[Partition]\nType=home\nTPM2PCRs=+\n", 3, "TPM2PCRs", "names no PCR"},
		{"KeyFile missing", "[Partition]\nType=home\nKeyFile=/nonexistent/sprout.key\n", 3, "KeyFile", "cannot read the key file"},
		{"KeyFile relative", "[Partition]\nType=home\nKeyFile=disk.key\n", 3, "KeyFile", "not an absolute path"},

		{"Encrypt tpm1", "[Partition]\nType=home\nEncrypt=tpm1\n", 3, "Encrypt", "not an encryption mode"},
		{"Encrypt bogus", "[Partition]\nType=home\nEncrypt=bogus\n", 3, "Encrypt", "not an encryption mode"},
		{"Encrypt empty", "[Partition]\nType=home\nEncrypt=\n", 3, "Encrypt", "not an encryption mode"},
		{"Verity without VerityMatchKey", "[Partition]\nType=home\nVerity=data\n", 3, "Verity", "VerityMatchKey= must be set"},
		{"Verity junk", "[Partition]\nType=home\nVerity=yes\n", 3, "Verity", "not a Verity= mode"},
		{"VerityMatchKey without Verity", "[Partition]\nType=home\nVerityMatchKey=root\n", 3, "VerityMatchKey", "can only be set if Verity="},
		{"Minimize best on ext4", "[Partition]\nType=home\nFormat=ext4\nMinimize=best\n", 4, "Minimize", "read-only file systems, btrfs"},
		{"Minimize junk", "[Partition]\nType=home\nMinimize=small\n", 3, "Minimize", "not a Minimize= mode"},
		{"CopyBlocks with Format", "[Partition]\nType=home\nFormat=ext4\nCopyBlocks=/dev/zero\n", 4, "CopyBlocks", "cannot be combined with Format="},
		{"CopyFiles relative", "[Partition]\nType=home\nCopyFiles=etc:/etc\n", 3, "CopyFiles", "not an absolute path"},
		{"VerityDataBlockSizeBytes odd", "[Partition]\nType=home\nVerityDataBlockSizeBytes=1000\n", 3, "VerityDataBlockSizeBytes", "power of 2"},
		{"MountPoint empty (262 crashes)", "[Partition]\nType=home\nMountPoint=\n", 3, "MountPoint", "crashes"},
		{"MountPoint relative", "[Partition]\nType=home\nMountPoint=home\n", 3, "MountPoint", "not an absolute path"},
		{"MountPoint dot-dot", "[Partition]\nType=home\nMountPoint=/a/../b\n", 3, "MountPoint", "not normalized"},
		{"MountPoint blank", "[Partition]\nType=home\nMountPoint=/my home\n", 3, "MountPoint", "blank or control character"},
		{"MountPoint blank option", "[Partition]\nType=home\nMountPoint=/home:\"a b\"\n", 3, "MountPoint", "blank or control character"},
		{"MountPoint too many", "[Partition]\nType=home\nMountPoint=/home:a:b\n", 3, "MountPoint", "more than 2 fields"},
		{"MountPoint open quote", "[Partition]\nType=home\nMountPoint=\"/home\n", 3, "MountPoint", "quote is not closed"},
		{"MountPoint bad escape", "[Partition]\nType=home\nMountPoint=/ho\\qme\n", 3, "MountPoint", "invalid escape"},
		{"EncryptedVolume slash", "[Partition]\nType=home\nEncryptedVolume=a/b\n", 3, "EncryptedVolume", "not a valid volume name"},
		{"EncryptedVolume fixate", "[Partition]\nType=home\nEncryptedVolume=h:-:-:fixate-volume-key\n", 3, "EncryptedVolume", "fixate-volume-key"},
		{"EncryptedVolume bad extra", "[Partition]\nType=home\nEncryptedVolume=h:-:-:x\n", 3, "EncryptedVolume", "not an extra option"},
		{"EncryptedVolume too many", "[Partition]\nType=home\nEncryptedVolume=h:-:-::x\n", 3, "EncryptedVolume", "more than 4 fields"},
		{"VolumeLabel too long", "[Partition]\nType=home\nVolumeLabel=0123456789012345678901234567890123456\n", 3, "VolumeLabel", "at most 36 bytes"},
		{"VolumeLabel unknown specifier", "[Partition]\nType=home\nVolumeLabel=%z\n", 3, "VolumeLabel", "unknown specifier %z"},
		{"Subvolumes relative", "[Partition]\nType=home\nSubvolumes=/a b\n", 3, "Subvolumes", "not an absolute path"},
		{"Subvolumes flag", "[Partition]\nType=home\nSubvolumes=/a:rw\n", 3, "Subvolumes", "not a subvolume flag"},
		{"DefaultSubvolume not a subvolume", "[Partition]\nType=home\nSubvolumes=/a\nDefaultSubvolume=/b\n", 4, "DefaultSubvolume", "not one of the paths in Subvolumes="},
		{"SupplementFor path", "[Partition]\nType=home\nSupplementFor=a/b\n", 3, "SupplementFor", "not a definition name"},
		{"unknown key", "[Partition]\nType=home\nFoo=bar\n", 3, "Foo", "unsupported key 'Foo' in [Partition] (not a repart.d setting)"},
		{"key case matters", "[Partition]\ntype=home\n", 2, "type", "unsupported key 'type'"},
		{"key with blank", "[Partition]\nType=home\nLa bel=x\n", 3, "La bel", "unsupported key 'La bel'"},
		{"unknown key in empty value", "[Partition]\nType=home\nFooBar=\n", 3, "FooBar", "unsupported key"},

		{"unknown section", "[Partition]\nType=home\n[Foo]\nLabel=x\n", 3, "", "unsupported section [Foo]"},
		{"padded section name", "[ Partition ]\nType=home\n", 1, "", "unsupported section [ Partition ]"},
		{"empty section name", "[]\n[Partition]\nType=home\n", 1, "", "unsupported section []"},
		{"lower-case section", "[partition]\nType=home\n", 1, "", "unsupported section [partition]"},
		{"assignment before section", "Type=home\n[Partition]\n", 1, "Type", "outside of a section"},
		{"missing =", "[Partition]\nType=home\nReadOnly\n", 3, "", "missing '='"},
		{"missing key", "[Partition]\nType=home\n=1\n", 3, "", "missing key name"},
		{"bad header", "[Partition\nType=home\n", 1, "", "invalid section header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, path, err := parseString(t, tt.body)
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if se.File != path || se.Line != tt.line || se.Key != tt.key || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("got %+v\nwant line %d key %q msg containing %q", se, tt.line, tt.key, tt.msg)
			}
			prefix := path + ":"
			if tt.line == 0 {
				prefix = path + ": "
			}
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("message %q does not start with %q", err, prefix)
			}
		})
	}
}

// An invalid value names the key and the value in the message text too.
func TestErrorText(t *testing.T) {
	_, path, err := parseString(t, "[Partition]\nType=home\nWeight=heavy\n")
	want := path + `:3: invalid value for Weight=: "heavy": not an unsigned integer (invalid syntax)`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	_, path, err = parseString(t, "[Partition]\nType=home\nIntegrity=inline\n")
	want = path + ":3: unsupported key 'Integrity' in [Partition] (a repart.d setting of systemd 260 that sprout does not implement)"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

func TestParseDropIns(t *testing.T) {
	dir := t.TempDir()
	main := writeFile(t, dir, "a.conf", "[Partition]\nType=home\nLabel=main\nWeight=10\n")
	d1 := writeFile(t, dir, "a.conf.d/1.conf", "[Partition]\nLabel=one\nSizeMaxBytes=1G\n")
	d2 := writeFile(t, dir, "a.conf.d/2.conf", "[Partition]\nLabel=two\n")
	d, err := Parse(main, []string{d1, d2})
	if err != nil {
		t.Fatal(err)
	}
	if *d.Label != "two" || d.Weight != 10 || d.SizeMax != 1<<30 {
		t.Errorf("got label %q weight %d sizemax %d", *d.Label, d.Weight, d.SizeMax)
	}
	if !reflect.DeepEqual(d.DropIns, []string{d1, d2}) {
		t.Errorf("DropIns = %v", d.DropIns)
	}
	want := map[string]string{"Type": main + ":2", "Label": d2 + ":2", "Weight": main + ":4", "SizeMaxBytes": d1 + ":3"}
	if !reflect.DeepEqual(d.Lines, want) {
		t.Errorf("Lines = %v\nwant %v", d.Lines, want)
	}

	// Type may come from a drop-in only.
	bare := writeFile(t, dir, "b.conf", "[Partition]\nLabel=x\n")
	typ := writeFile(t, dir, "b.conf.d/t.conf", "[Partition]\nType=esp\n")
	if d, err := Parse(bare, []string{typ}); err != nil || d.Type != espGUID {
		t.Errorf("Type from drop-in: %v %v", d.Type, err)
	}

	// Errors in a drop-in name the drop-in.
	bad := writeFile(t, dir, "a.conf.d/3.conf", "[Partition]\nMountPoint=home\n")
	_, err = Parse(main, []string{d1, bad})
	var se *Error
	if !errors.As(err, &se) || se.File != bad || se.Line != 2 || se.Key != "MountPoint" {
		t.Errorf("err = %v", err)
	}

	// Min/max compared after all drop-ins; the error points at the minimum.
	lo := writeFile(t, dir, "a.conf.d/4.conf", "[Partition]\nSizeMinBytes=2G\n")
	_, err = Parse(main, []string{d1, lo})
	if !errors.As(err, &se) || se.File != lo || se.Line != 2 || !strings.Contains(se.Msg, d1+":3") {
		t.Errorf("err = %v", err)
	}

	// A missing drop-in file is an I/O error that keeps its cause.
	_, err = Parse(main, []string{filepath.Join(dir, "nope.conf")})
	if !errors.As(err, &se) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v", err)
	}
}

// TestRequireVersion: TPM2PCRs= and KeyFile= (259) are refused under an
// older --compat=, naming file:line and the version that added them.
func TestRequireVersion(t *testing.T) {
	d, path, err := parseString(t, "[Partition]\nType=home\nEncrypt=tpm2\nTPM2PCRs=7\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []compat.Version{259, 262} {
		if err := RequireVersion([]Definition{d}, v); err != nil {
			t.Errorf("--compat=%d: %v", v, err)
		}
	}
	err = RequireVersion([]Definition{d}, 257)
	var se *Error
	if !errors.As(err, &se) || se.File != path || se.Line != 4 || se.Key != "TPM2PCRs" ||
		err.Error() != path+":4: TPM2PCRs= needs systemd-repart 259 or later, but --compat=257 follows systemd-repart 257" {
		t.Errorf("--compat=257: %v", err)
	}
}
