package encryption

import "fmt"

// Settings are one volume's keys and TPM2 policy: the run's (resolved
// by luks.Resolve from the command line and the system), then its
// definition's (ForPartition).
type Settings struct {
	// KeyFile holds the key of the key-file slot; "" is the empty key,
	// 252's default.
	KeyFile string
	// TPM2Device is the TPM2 device node enrollment uses ("" if none).
	TPM2Device string
	// TPM2PCRs are the PCRs the TPM2 key is bound to ("7", "1+7", "").
	TPM2PCRs string
	// PublicKey is the PEM public key of a signed PCR policy ("" for
	// none), PublicKeyPCRs the PCRs its signatures cover.
	PublicKey, PublicKeyPCRs string
	// PCRLock is the pcrlock policy file ("" for none).
	PCRLock string
	// KeyFileFromFlag and PCRsFromFlag: --key-file= and a non-empty
	// --tpm2-pcrs= win over a definition's KeyFile= and TPM2PCRs= (262).
	KeyFileFromFlag, PCRsFromFlag bool
	// Enroller is the version of the systemd-cryptenroll that enrolls
	// the TPM2 key (CheckVolume sets it; 0: unknown, taken to have every
	// flag): the flags that turn its own search for a public key and a
	// pcrlock policy off depend on it.
	Enroller int
}

// Capabilities is what this system can do for encryption: the caller
// probes it (luks.Probe) and the planner refuses a plan that needs more,
// so a dry run refuses what a real run would, before any write.
type Capabilities struct {
	// Probed is false when nothing was probed: everything is assumed
	// present (for planning without a system, as the planner's tests do).
	Probed bool
	// Cryptsetup and Cryptenroll say whether the programs were found.
	Cryptsetup, Cryptenroll bool
	// NoTPM2 says why there is no TPM2 device ("" when there is one).
	NoTPM2 string
	// EnrollerVersion asks systemd-cryptenroll for its version; it is
	// called only for a plan that makes a TPM2 volume (nil: unknown,
	// taken as a version that has every flag sprout passes).
	EnrollerVersion func() (int, error)
	// Unusable is why the TPM2 policy asked for cannot be enrolled (a
	// public key or pcrlock policy named on the command line that cannot
	// be read): it refuses a plan that makes a TPM2 volume, and only
	// such a plan.
	Unusable error
	Settings
}

// Check returns an error when a volume of the given mode cannot be made.
func (c Capabilities) Check(mode Mode) error {
	if mode == Off || !c.Probed {
		return nil
	}
	if !c.Cryptsetup {
		return fmt.Errorf("%s is needed for Encrypt=%s but was not found in $PATH", Cryptsetup, mode)
	}
	if mode.UsesTPM2() {
		if !c.Cryptenroll {
			return fmt.Errorf("%s is needed for Encrypt=%s but was not found in $PATH", Cryptenroll, mode)
		}
		if c.TPM2Device == "" {
			return fmt.Errorf("Encrypt=%s needs a TPM2 device: %s", mode, c.NoTPM2)
		}
	}
	return nil
}

// PCRLockEnroller is the first systemd-cryptenroll that enrolls pcrlock
// policies (--tpm2-pcrlock=).
const PCRLockEnroller = 255

// CheckVolume is Check for one volume with its settings, which it
// completes with the version of the systemd-cryptenroll that will
// enroll it: a pcrlock policy needs one that knows them.
func (c Capabilities) CheckVolume(mode Mode, s *Settings) error {
	if err := c.Check(mode); err != nil || !mode.UsesTPM2() || !c.Probed {
		return err
	}
	if c.Unusable != nil {
		return fmt.Errorf("Encrypt=%s: %w", mode, c.Unusable)
	}
	if c.EnrollerVersion == nil {
		return nil
	}
	v, err := c.EnrollerVersion()
	if err != nil {
		return fmt.Errorf("Encrypt=%s: %w", mode, err)
	}
	s.Enroller = v
	if s.PCRLock != "" && v < PCRLockEnroller {
		return fmt.Errorf("the pcrlock policy %s needs systemd-cryptenroll %d or later to enroll it; this system's is %d", s.PCRLock, PCRLockEnroller, v)
	}
	return nil
}
