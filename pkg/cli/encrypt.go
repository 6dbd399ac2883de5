package cli

import (
	"fmt"
	"sync"

	"github.com/sprout-initrd/sprout/pkg/luks"
	"github.com/sprout-initrd/sprout/pkg/mkfs"
	"github.com/sprout-initrd/sprout/pkg/spec"
)

// newestCompat is the systemd-repart version followed by default.
const newestCompat = 262

// Versions of systemd-repart that changed the TPM2 enrollment, observed
// on each version's binary (docs/compatibility.md).
const (
	pcrNamesSince      = 254 // PCR names in PCR lists (252: numbers only)
	pcrLockSince       = 255 // --tpm2-pcrlock= and the automatic pcrlock policy
	noDefaultPCRsSince = 258 // no PCRs by default (was 7)
	stubKeySince       = 262 // the UKI's key in /.extra is found in the initrd (257: not)
)

// encryptionRules are the TPM2 enrollment rules of systemd-repart v.
func encryptionRules(v int) luks.Rules {
	r := luks.Rules{DefaultPCRs: "7", PCRNames: v >= pcrNamesSince, PCRLock: v >= pcrLockSince, StubPublicKey: v >= stubKeySince}
	if v >= noDefaultPCRsSince {
		r.DefaultPCRs = ""
	}
	return r
}

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
	r := encryptionRules(c.compat)
	if c.tpm2PCRLock != nil && !r.PCRLock {
		return fmt.Errorf("--tpm2-pcrlock= was added in systemd-repart %d; --compat=%d does not have it", pcrLockSince, c.compat)
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"tpm2-pcrs", c.tpm2PCRs}, {"tpm2-public-key-pcrs", c.tpm2PublicKeyPCRs}} {
		if f.v == nil {
			continue
		}
		pcrs, err := spec.ParsePCRs(*f.v, r.PCRNames)
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
func (r *run) probeEncryption(defs []spec.Definition) luks.Capabilities {
	req := luks.Request{KeyFile: r.cfg.keyFile, TPM2PCRs: r.cfg.tpm2PCRs, PublicKey: r.cfg.tpm2PublicKey,
		PublicKeyPCRs: r.cfg.tpm2PublicKeyPCRs, PCRLock: r.cfg.tpm2PCRLock}
	encrypts := false
	for _, d := range defs {
		encrypts = encrypts || d.Encrypt != spec.EncryptOff
	}
	if !encrypts {
		// Nothing is enrolled: nothing to look for (as 262, which reads
		// the key files only when it encrypts).
		return luks.Capabilities{Probed: true}
	}
	c := luks.Probe(luks.Settings{}, r.cfg.tpm2Device, mkfs.LookPath, "/sys/class/tpmrm")
	req.TPM2Device = c.TPM2Device
	// A key file named on the command line that cannot be read refuses
	// only a run that enrolls a TPM2 key (CheckVolume): a boot with
	// nothing to create must not fail for it.
	c.Settings, c.Unusable = luks.Resolve(req, encryptionRules(r.cfg.compat), luks.Files{InInitrd: inInitrd()})
	c.EnrollerVersion = sync.OnceValues(func() (int, error) { return luks.EnrollerVersion(mkfs.Output) })
	return c
}
