package encryption

import (
	"errors"
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/pkg/compat"
)

func TestCheckVolume(t *testing.T) {
	version := func(v int) func() (int, error) { return func() (int, error) { return v, nil } }
	c := Capabilities{Probed: true, Cryptsetup: true, Cryptenroll: true, Settings: Settings{TPM2Device: "/dev/tpmrm0"}}

	c.EnrollerVersion = version(252)
	s := Settings{TPM2PCRs: "7"}
	if err := c.CheckVolume(TPM2, &s); err != nil || s.Enroller != 252 {
		t.Errorf("252, no pcrlock: %v, enroller %d", err, s.Enroller)
	}
	s = Settings{PCRLock: "/run/systemd/pcrlock.json"}
	if err := c.CheckVolume(TPM2, &s); err == nil || !strings.Contains(err.Error(), "needs systemd-cryptenroll 255 or later") {
		t.Errorf("252 and a pcrlock policy: %v", err)
	}
	c.EnrollerVersion = version(262)
	if err := c.CheckVolume(KeyFileTPM2, &s); err != nil || s.Enroller != 262 {
		t.Errorf("262 and a pcrlock policy: %v", err)
	}
	// A key-file volume never asks the enroller, and an unusable TPM2
	// policy refuses only TPM2 volumes.
	c.EnrollerVersion = func() (int, error) { return 0, errors.New("must not be asked") }
	c.Unusable = errors.New("--tpm2-public-key=/x: no such file")
	s = Settings{}
	if err := c.CheckVolume(KeyFile, &s); err != nil {
		t.Errorf("key-file: %v", err)
	}
	if err := c.CheckVolume(TPM2, &s); err == nil || !strings.Contains(err.Error(), "--tpm2-public-key=/x") {
		t.Errorf("tpm2 with an unusable key: %v", err)
	}
}

func TestPolicyDescription(t *testing.T) {
	s := Settings{PublicKey: "/.extra/tpm2-pcr-public-key.pem", PublicKeyPCRs: "11"}
	if got, want := s.Policy(), "no PCRs, a PCR policy signed by the key in /.extra/tpm2-pcr-public-key.pem for PCRs 11"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}

// TestRulesAt: the rules of each version sprout follows, as the oracles
// showed them (the declarations' rows are checked too).
func TestRulesAt(t *testing.T) {
	for _, b := range []interface{ Check() error }{defaultPCRs, pcrNames, pcrLock, stubPublicKey} {
		if err := b.Check(); err != nil {
			t.Error(err)
		}
	}
	for v, want := range map[int]Rules{
		252: {DefaultPCRs: "7"},
		254: {DefaultPCRs: "7", PCRNames: true},
		257: {DefaultPCRs: "7", PCRNames: true, PCRLock: true},
		262: {PCRNames: true, PCRLock: true, StubPublicKey: true},
	} {
		if got := RulesAt(compat.Version(v)); got != want {
			t.Errorf("%d: %+v, want %+v", v, got, want)
		}
	}
}
