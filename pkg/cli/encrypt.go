package cli

import (
	"fmt"
	"sync"

	"github.com/sprout-initrd/sprout/pkg/discover"
	"github.com/sprout-initrd/sprout/pkg/encryption"
	"github.com/sprout-initrd/sprout/pkg/luks"
	"github.com/sprout-initrd/sprout/pkg/mkfs"
	"github.com/sprout-initrd/sprout/pkg/repartd"
)

// pcrsOpt keeps a PCR list flag in *dst; it is checked once all flags
// are read, against the version followed (checkEncryptionFlags).
func pcrsOpt(dst **string) func(string) error {
	return func(v string) error {
		*dst = &v
		return nil
	}
}

// checkEncryptionFlags parses the PCR lists and refuses what the version
// followed does not have: --tpm2-pcrlock= (255) and PCR names (254).
func (c *config) checkEncryptionFlags() error {
	r := encryption.RulesAt(c.compat)
	if c.tpm2PCRLock != nil && !r.PCRLock {
		return fmt.Errorf("--tpm2-pcrlock= needs systemd-repart %d or later, but --compat=%d follows systemd-repart %d",
			encryption.PCRLockSince, c.compat.OrDefault(), c.compat.OrDefault())
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"tpm2-pcrs", c.tpm2PCRs}, {"tpm2-public-key-pcrs", c.tpm2PublicKeyPCRs}} {
		if f.v == nil {
			continue
		}
		pcrs, err := encryption.ParsePCRs(*f.v, r.PCRNames)
		if err != nil {
			return fmt.Errorf("--%s=%s: %w", f.name, *f.v, err)
		}
		*f.v = pcrs
	}
	return nil
}

// probeEncryption finds what Encrypt= needs (cryptsetup, and for TPM2
// systemd-cryptenroll and a TPM2 device) when a definition asks for it,
// and resolves the run's keys and TPM2 policy (luks.Resolve), so the
// planner refuses a run that would fail halfway.
func (r *run) probeEncryption(defs []repartd.Definition) encryption.Capabilities {
	encrypts := false
	for _, d := range defs {
		encrypts = encrypts || d.Encrypt != encryption.Off
	}
	if !encrypts {
		// Nothing is enrolled: nothing to look for (as 262, which reads
		// the key files only when it encrypts).
		return encryption.Capabilities{Probed: true}
	}
	c := luks.Probe(encryption.Settings{}, r.cfg.tpm2Device, mkfs.LookPath, "/sys/class/tpmrm")
	req := luks.Request{KeyFile: r.cfg.keyFile, TPM2Device: c.TPM2Device, TPM2PCRs: r.cfg.tpm2PCRs,
		PublicKey: r.cfg.tpm2PublicKey, PublicKeyPCRs: r.cfg.tpm2PublicKeyPCRs, PCRLock: r.cfg.tpm2PCRLock}
	// A key file named on the command line that cannot be read refuses
	// only a run that enrolls a TPM2 key (CheckVolume): a boot with
	// nothing to create must not fail for it.
	c.Settings, c.Unusable = luks.Resolve(req, encryption.RulesAt(r.cfg.compat), luks.Files{InInitrd: discover.InInitrd()})
	c.EnrollerVersion = sync.OnceValues(func() (int, error) { return luks.EnrollerVersion(mkfs.Output) })
	return c
}
