package plan

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/encryption"
	"github.com/sprout-initrd/sprout/pkg/repartd"
)

// TestLUKSUUID: the LUKS2 UUIDs systemd-repart 252 gave the volumes of
// new partitions with these partition UUIDs (luksDump in a QEMU guest,
// seed 0123456789abcdef0123456789abcdef).
func TestLUKSUUID(t *testing.T) {
	for part, want := range map[string]string{
		"c6384fca-e59b-4b73-a86f-ab8b15536288": "ae8dd8bc-7934-4d1b-864d-8306ef516f03", // home
		"f87f588c-efac-4621-b136-5fb9ed726269": "002d6931-ad98-4c0d-8874-17cd5a04f1b0", // srv
		"c0c46eff-e386-4746-a2bd-0962cd326ea2": "5c0283d4-f436-4cf8-a84d-0f1b3ee0c993", // var
		"970ffb70-e45e-4ddb-a860-59c7aeeaae6b": "3b7b2871-4747-4f73-869e-9dac900386a1", // tmp
	} {
		if got := LUKSUUID(uuid.MustParse(part)); got.String() != want {
			t.Errorf("LUKSUUID(%s) = %s, want %s", part, got, want)
		}
	}
}

// TestEncryptRefusals: what encryption needs is checked before any
// write, in the dry run too; an existing partition is never encrypted.
func TestEncryptRefusals(t *testing.T) {
	all := encryption.Capabilities{Probed: true, Cryptsetup: true, Cryptenroll: true,
		Settings: encryption.Settings{TPM2Device: "/dev/tpmrm0", TPM2PCRs: "7"}}
	cases := []struct {
		name string
		mode string
		caps func(c *encryption.Capabilities)
		want string
	}{
		{"key-file", "key-file", func(*encryption.Capabilities) {}, ""},
		{"no cryptsetup", "key-file", func(c *encryption.Capabilities) { c.Cryptsetup = false }, "future partition 1: cryptsetup is needed for Encrypt=key-file"},
		{"no TPM2", "tpm2", func(c *encryption.Capabilities) { c.TPM2Device, c.NoTPM2 = "", "none" }, "future partition 1: Encrypt=tpm2 needs a TPM2 device"},
		{"no cryptenroll", "key-file+tpm2", func(c *encryption.Capabilities) { c.Cryptenroll = false }, "systemd-cryptenroll is needed"},
		{"key-file without TPM2", "key-file", func(c *encryption.Capabilities) { c.TPM2Device, c.Cryptenroll = "", false }, ""},
	}
	for _, tc := range cases {
		c := all
		tc.caps(&c)
		defs := []repartd.Definition{def(t, "home", "home", "Format=ext4", "Encrypt="+tc.mode)}
		p, err := Make(defs, blank(1*gib, 512), Options{Empty: EmptyAllow, Seed: seedA, Encryption: c, Compat: 252})
		var fe *FormatError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (!errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		case tc.want == "":
			var steps []string
			for _, s := range p.Steps {
				switch s := s.(type) {
				case EncryptPartition:
					steps = append(steps, fmt.Sprintf("encrypt %d %s %s %q", s.Index, s.Mode, s.UUID, s.Label))
				case FormatPartition:
					steps = append(steps, fmt.Sprintf("format %d %s inside=%v fs=%d", s.Index, s.Format, s.Encrypted, s.FileSystemSize()))
				}
			}
			want := fmt.Sprintf("encrypt 1 key-file %s \"home\",format 1 ext4 inside=true fs=%d", LUKSUUID(p.Partitions[0].UUID), p.Partitions[0].NewSize-encryption.MetadataSize)
			if strings.Join(steps, ",") != want {
				t.Errorf("%s: steps %v, want %s", tc.name, steps, want)
			}
		}
	}
}

// TestEncryptMinimumSize: 252 adds the LUKS2 header (16 MiB) to the file
// system's minimum (ext4: 1 MiB; unknown minimum: one grain), above the
// 10 MiB default (checked against 252's --size=auto).
func TestEncryptMinimumSize(t *testing.T) {
	for _, tc := range []struct {
		format string
		want   uint64
	}{{"ext4", 17 << 20}, {"vfat", 16<<20 + 4096}, {"xfs", 30 << 20}, {"btrfs", 272 << 20}} {
		defs := []repartd.Definition{def(t, "home", "home", "Format="+tc.format, "Encrypt=key-file")}
		got := MinimalSize(defs, blank(0, 512), compat.Oldest) - gptMetadataSize
		if got != tc.want {
			t.Errorf("Encrypt=key-file Format=%s: minimum %d, want %d", tc.format, got, tc.want)
		}
	}
}

// TestEncryptExistingUnchanged: Encrypt= has no effect on a partition
// that exists.
func TestEncryptExistingUnchanged(t *testing.T) {
	tb := table(t, 1*gib, 2048, "1:home:2048:204800")
	defs := []repartd.Definition{def(t, "home", "home", "Format=ext4", "Encrypt=tpm2")}
	p := mustPlan(t, defs, existing(tb, 1*gib), Options{Seed: seedA})
	for _, s := range p.Steps {
		if _, ok := s.(EncryptPartition); ok {
			t.Fatalf("an existing partition gets %s", s.Describe())
		}
	}
}
