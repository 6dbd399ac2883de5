package encryption

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultPCRs is the --tpm2-pcrs= default of 252: Secure Boot state.
const DefaultPCRs = "7"

// Settings are the run's encryption options (--key-file=, --tpm2-device=,
// --tpm2-pcrs=), resolved and checked by the caller.
type Settings struct {
	// KeyFile holds the key of the key-file slot; "" is the empty key,
	// 252's default.
	KeyFile string
	// TPM2Device is the TPM2 device node enrollment uses ("" if none).
	TPM2Device string
	// TPM2PCRs are the PCRs the TPM2 key is bound to ("7", "1+7", "").
	TPM2PCRs string
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

// ParsePCRs checks a --tpm2-pcrs= value: PCR numbers 0–23 joined by "+"
// or ",", or empty (no PCRs). It returns the "+" form.
func ParsePCRs(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == '+' || r == ',' }) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 || n > 23 {
			return "", fmt.Errorf("%q is not a PCR number (0–23)", f)
		}
		out = append(out, strconv.Itoa(n))
	}
	if len(out) == 0 {
		return "", fmt.Errorf("%q names no PCR", v)
	}
	return strings.Join(out, "+"), nil
}
