package luks

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/encryption"
)

func TestProbe(t *testing.T) {
	sys := t.TempDir()
	found := func(string) (string, error) { return "/bin/x", nil }
	missing := func(string) (string, error) { return "", errors.New("not found") }
	c := Probe(encryption.Settings{}, "auto", found, sys)
	if !c.Cryptsetup || !c.Cryptenroll || c.TPM2Device != "" || !strings.Contains(c.NoTPM2, "no TPM2 device") {
		t.Errorf("no TPM2: %+v", c)
	}
	if err := os.Mkdir(filepath.Join(sys, "tpmrm0"), 0o755); err != nil {
		t.Fatal(err)
	}
	if c := Probe(encryption.Settings{}, "", missing, sys); c.Cryptsetup || c.Cryptenroll || c.TPM2Device != "/dev/tpmrm0" {
		t.Errorf("auto: %+v", c)
	}
	if c := Probe(encryption.Settings{}, "/dev/null", found, sys); c.TPM2Device != "/dev/null" {
		t.Errorf("explicit device: %+v", c)
	}
	if c := Probe(encryption.Settings{}, filepath.Join(sys, "tpmrm0"), found, sys); c.TPM2Device != "" || !strings.Contains(c.NoTPM2, "not a character device") {
		t.Errorf("a directory as device: %+v", c)
	}
	if c := Probe(encryption.Settings{}, "/nonexistent/tpm", found, sys); c.TPM2Device != "" {
		t.Errorf("missing device: %+v", c)
	}
}

// recorded runs Make with a runner that records the command lines.
func recorded(t *testing.T, v Volume) ([]string, string) {
	t.Helper()
	var calls []string
	var inside string
	run := func(_ context.Context, args []string) error {
		calls = append(calls, strings.Join(args, " "))
		return nil
	}
	tmp := t.TempDir()
	err := Make(context.Background(), run, v, tmp, func(node string) error {
		inside = node
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("key files left behind: %v", left)
	}
	// The temporary key's directory differs from run to run.
	tmpKey := regexp.MustCompile(regexp.QuoteMeta(tmp) + `/sprout-luks-[0-9]+`)
	for i := range calls {
		calls[i] = tmpKey.ReplaceAllString(calls[i], "TMP")
	}
	return calls, inside
}

func TestMakeKeySlots(t *testing.T) {
	id := uuid.MustParse("ae8dd8bc-7934-4d1b-864d-8306ef516f03")
	base := Volume{Device: "/dev/loop9", UUID: id, Label: "home", SectorSize: 512, KeyBits: 256,
		Settings: encryption.Settings{KeyFile: "/etc/disk.key", TPM2Device: "/dev/tpmrm0", TPM2PCRs: "7"}}
	format := "cryptsetup luksFormat --batch-mode --type luks2 --cipher aes-xts-plain64 --key-size 256 --sector-size 512 --uuid " + id.String() + " --label home --volume-key-file TMP/volume-key --key-file "
	open := "cryptsetup open --type luks2 --volume-key-file TMP/volume-key /dev/loop9 sprout-" + id.String()
	closeCmd := "cryptsetup close sprout-" + id.String()
	cases := []struct {
		mode    encryption.Mode
		keyFile string
		want    []string
	}{
		{encryption.KeyFile, "/etc/disk.key", []string{
			format + "/etc/disk.key /dev/loop9", open, closeCmd}},
		{encryption.KeyFile, "", []string{ // the empty key
			format + "TMP/key /dev/loop9", open, closeCmd}},
		{encryption.KeyFileTPM2, "/etc/disk.key", []string{
			format + "/etc/disk.key /dev/loop9", open, closeCmd,
			"systemd-cryptenroll --unlock-key-file=/etc/disk.key --tpm2-device=/dev/tpmrm0 --tpm2-pcrs=7 --tpm2-public-key= --tpm2-pcrlock= /dev/loop9"}},
		{encryption.TPM2, "/etc/disk.key", []string{
			format + "TMP/key --pbkdf pbkdf2 --pbkdf-force-iterations 1000 /dev/loop9", open, closeCmd,
			"cryptsetup luksAddKey --batch-mode --key-file TMP/key --key-slot 1 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 /dev/loop9 TMP/key",
			"cryptsetup luksKillSlot --batch-mode --key-file TMP/key /dev/loop9 0",
			"systemd-cryptenroll --unlock-key-file=TMP/key --tpm2-device=/dev/tpmrm0 --tpm2-pcrs=7 --tpm2-public-key= --tpm2-pcrlock= --wipe-slot=1 /dev/loop9"}},
	}
	for _, tc := range cases {
		v := base
		v.Mode, v.KeyFile = tc.mode, tc.keyFile
		calls, inside := recorded(t, v)
		if inside != "/dev/mapper/sprout-"+id.String() {
			t.Errorf("%s: file system made on %q", tc.mode, inside)
		}
		if strings.Join(calls, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s (key file %q):\n got %s\nwant %s", tc.mode, tc.keyFile, strings.Join(calls, "\n     "), strings.Join(tc.want, "\n     "))
		}
	}
}

// TestMakeClosesOnFailure: a failing mkfs still closes the volume and
// enrolls nothing.
func TestMakeClosesOnFailure(t *testing.T) {
	var calls []string
	run := func(_ context.Context, args []string) error {
		calls = append(calls, args[0]+" "+args[1])
		return nil
	}
	v := Volume{Device: "/dev/loop9", SectorSize: 512, KeyBits: 256, Mode: encryption.TPM2}
	boom := errors.New("mkfs failed")
	err := Make(context.Background(), run, v, t.TempDir(), func(string) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if got := strings.Join(calls, ","); got != "cryptsetup luksFormat,cryptsetup open,cryptsetup close" {
		t.Errorf("calls: %s", got)
	}
}

func TestCheckKeyFile(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckKeyFile(empty); err != nil {
		t.Errorf("an empty key file: %v", err)
	}
	if err := CheckKeyFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, ErrNoKeyFile) {
		t.Errorf("a missing key file: %v", err)
	}
}
