package encryption

// The TPM2 policy a volume's key is sealed with — literal PCRs, a signed
// PCR policy (a public key and the PCRs its signatures cover), a pcrlock
// policy — and the rules by which systemd-repart's versions chose it,
// each observed on that version's binary (252 in a QEMU guest, 254, 257
// and 262 in the oracle chroots with an swtpm).

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sprout-initrd/sprout/pkg/compat"
)

// DefaultPublicKeyPCRs are the PCRs a signed policy covers unless
// --tpm2-public-key-pcrs= says otherwise: 11, where systemd-stub
// measures the unified kernel image.
const DefaultPublicKeyPCRs = "11"

// Rules are the parts of the TPM2 enrollment that changed between the
// systemd-repart versions sprout follows (RulesAt).
type Rules struct {
	// DefaultPCRs bind a volume when neither --tpm2-pcrs= nor TPM2PCRs=
	// says: "7" up to 257, none from 258.
	DefaultPCRs string
	// PCRNames: PCR names in PCR lists (254; 252 takes numbers only).
	PCRNames bool
	// PCRLock: --tpm2-pcrlock= and, without it, the pcrlock policy
	// files systemd-pcrlock writes (255). A pcrlock policy replaces the
	// default PCRs; PCRs asked for are bound as well.
	PCRLock bool
	// StubPublicKey: in the initrd the public key systemd-stub passes
	// from the UKI's .pcrpkey section (/.extra/tpm2-pcr-public-key.pem)
	// is found too (262; 257 does not look there).
	StubPublicKey bool
}

// The versions the rules changed in. Where NEWS is silent the version is
// the first oracle that shows the change: names are refused by 252 and
// taken by 254; --tpm2-pcrlock= is missing in 254 and there in 257 (255
// in the manual); 257 binds PCR 7 and 262 nothing by default (NEWS 258);
// 257 ignores /.extra in the initrd and 262 takes the key from there.
var (
	defaultPCRs   = compat.ByVersion[string]{{Since: 252, Value: "7"}, {Since: 258, Value: ""}}
	pcrNames      = compat.ByVersion[bool]{{Since: 252, Value: false}, {Since: 254, Value: true}}
	pcrLock       = compat.ByVersion[bool]{{Since: 252, Value: false}, {Since: 255, Value: true}}
	stubPublicKey = compat.ByVersion[bool]{{Since: 252, Value: false}, {Since: 262, Value: true}}
)

// PCRLockSince is the systemd-repart version that added --tpm2-pcrlock=.
const PCRLockSince = 255

// RulesAt are the rules of systemd-repart version v.
func RulesAt(v compat.Version) Rules {
	return Rules{DefaultPCRs: defaultPCRs.At(v), PCRNames: pcrNames.At(v), PCRLock: pcrLock.At(v), StubPublicKey: stubPublicKey.At(v)}
}

// PublicKeyPaths are where systemd-repart and systemd-cryptenroll look
// for the signed policy's public key when --tpm2-public-key= names none,
// in order (observed on 252, 257 and 262); with stub, in the initrd,
// systemd-stub's copy of the UKI's key comes last.
func PublicKeyPaths(inInitrd, stub bool) []string {
	paths := []string{"/etc/systemd/tpm2-pcr-public-key.pem", "/run/systemd/tpm2-pcr-public-key.pem",
		"/usr/local/lib/systemd/tpm2-pcr-public-key.pem", "/usr/lib/systemd/tpm2-pcr-public-key.pem"}
	if inInitrd && stub {
		paths = append(paths, "/.extra/tpm2-pcr-public-key.pem")
	}
	return paths
}

// PCRLockPaths are where systemd looks for a pcrlock policy when
// --tpm2-pcrlock= is not given (255 on), in order.
var PCRLockPaths = []string{"/run/systemd/pcrlock.json", "/var/lib/systemd/pcrlock.json"}

// ForPartition applies a definition's KeyFile= and TPM2PCRs= (nil: not
// set): each holds unless the command line names a key file or PCRs,
// which win, as in 262.
func (s Settings) ForPartition(keyFile string, pcrs *string) Settings {
	if keyFile != "" && !s.KeyFileFromFlag {
		s.KeyFile = keyFile
	}
	if pcrs != nil && !s.PCRsFromFlag {
		s.TPM2PCRs = *pcrs
	}
	return s
}

// Policy describes what a volume's TPM2 key is bound to, for the plan.
func (s Settings) Policy() string {
	var parts []string
	if s.TPM2PCRs == "" {
		parts = append(parts, "no PCRs")
	} else {
		parts = append(parts, "PCRs "+s.TPM2PCRs)
	}
	if s.PublicKey != "" {
		parts = append(parts, fmt.Sprintf("a PCR policy signed by the key in %s for PCRs %s", s.PublicKey, s.PublicKeyPCRs))
	}
	if s.PCRLock != "" {
		parts = append(parts, "the pcrlock policy "+s.PCRLock)
	}
	return strings.Join(parts, ", ")
}

// pcrRegistry holds the names systemd takes for PCRs in --tpm2-pcrs= and
// TPM2PCRs= (from 254 on; 252 takes numbers only), as the UAPI PCR
// registry names them, by number ("" where it names none). An array, not
// a map: a map would be built before main on every boot.
var pcrRegistry = [24]string{
	0: "platform-code", 1: "platform-config", 2: "external-code", 3: "external-config",
	4: "boot-loader-code", 5: "boot-loader-config", 6: "host-platform", 7: "secure-boot-policy",
	9: "kernel-initrd", 10: "ima", 11: "kernel-boot", 12: "kernel-config", 13: "sysexts",
	14: "shim-policy", 15: "system-identity", 16: "debug", 23: "application-support",
}

// pcrNumber is the number of the PCR the registry names name.
func pcrNumber(name string) (int, bool) {
	for n, s := range &pcrRegistry {
		if s != "" && s == name {
			return n, true
		}
	}
	return 0, false
}

// ParsePCRs checks a PCR list (--tpm2-pcrs=, --tpm2-public-key-pcrs=,
// TPM2PCRs=): PCR numbers 0–23, or with names their registry names,
// joined by "+" or ","; empty is no PCRs. It returns the numbers in
// ascending order joined by "+", the form every systemd-cryptenroll
// takes.
func ParsePCRs(v string, names bool) (string, error) {
	if v == "" {
		return "", nil
	}
	var nums []int
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == '+' || r == ',' }) {
		n, err := strconv.Atoi(f)
		switch {
		case err == nil && n >= 0 && n <= 23:
		case err == nil:
			return "", fmt.Errorf("%q is not a PCR number (0–23)", f)
		case strings.Contains(f, ":"):
			return "", fmt.Errorf("%q: sprout takes PCR numbers and names, not PCR values or banks", f)
		default:
			var known bool
			if n, known = pcrNumber(f); !known {
				return "", fmt.Errorf("%q is neither a PCR number (0–23) nor a PCR name", f)
			}
			if !names {
				return "", fmt.Errorf("%q: PCR names were added in systemd 254; this version takes numbers (%s is %d)", f, f, n)
			}
		}
		if !slices.Contains(nums, n) {
			nums = append(nums, n)
		}
	}
	if len(nums) == 0 {
		return "", fmt.Errorf("%q names no PCR", v)
	}
	slices.Sort(nums)
	out := make([]string, len(nums))
	for i, n := range nums {
		out[i] = strconv.Itoa(n)
	}
	return strings.Join(out, "+"), nil
}
