package luks

// The TPM2 policy a new volume's key is sealed with: which PCRs bind it
// literally, which signed PCR policy (a public key, the PCRs its
// signatures cover) and which pcrlock policy, resolved from the command
// line, a definition's TPM2PCRs= and KeyFile=, the files systemd looks
// for, and the version of systemd-repart sprout follows (Rules).

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DefaultPublicKeyPCRs are the PCRs a signed policy covers unless
// --tpm2-public-key-pcrs= says otherwise: 11, where systemd-stub
// measures the unified kernel image.
const DefaultPublicKeyPCRs = "11"

// Rules are the parts of the TPM2 enrollment that changed between the
// systemd-repart versions sprout follows; the caller declares them per
// version (--compat=). Each was observed on that version's binary.
type Rules struct {
	// DefaultPCRs bind a volume when neither --tpm2-pcrs= nor TPM2PCRs=
	// says: "7" up to 257, none from 258.
	DefaultPCRs string
	// PCRNames: PCR names in PCR lists (254).
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

// Request is what the command line asks for; a nil pointer is a flag
// that was not given.
type Request struct {
	KeyFile    string // --key-file= ("" when not given: the empty key)
	TPM2Device string // the device Probe found
	TPM2PCRs   *string
	// PublicKey is --tpm2-public-key=: a PEM file; nil or "" looks for
	// the key where systemd does (PublicKeyPaths).
	PublicKey *string
	// PublicKeyPCRs is --tpm2-public-key-pcrs= ("" turns the signed
	// policy off).
	PublicKeyPCRs *string
	// PCRLock is --tpm2-pcrlock= ("" turns the automatic policy off).
	PCRLock *string
}

// Files says where the files systemd looks for are: under Root ("" for
// the running system), and whether this is an initrd.
type Files struct {
	Root     string
	InInitrd bool
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

// Resolve turns the request into the run's settings under the rules:
// the public key and pcrlock policy found, and the PCRs a volume gets
// unless its definition's TPM2PCRs= says otherwise (ForPartition). A
// file named on the command line that cannot be read is the error (the
// settings are complete otherwise): the caller refuses with it a run
// that enrolls a TPM2 key, before its first write (262 fails at the
// enrollment, after formatting).
func Resolve(req Request, r Rules, f Files) (Settings, error) {
	s := Settings{KeyFile: req.KeyFile, KeyFileFromFlag: req.KeyFile != "", TPM2Device: req.TPM2Device}
	var errs []error

	s.PublicKeyPCRs = DefaultPublicKeyPCRs
	if req.PublicKeyPCRs != nil {
		s.PublicKeyPCRs = *req.PublicKeyPCRs
	}
	switch {
	case s.PublicKeyPCRs == "":
		// No signed policy, whatever key there is.
	case req.PublicKey != nil && *req.PublicKey != "":
		if err := checkPEM(*req.PublicKey); err != nil {
			errs = append(errs, fmt.Errorf("--tpm2-public-key=%s: %w", *req.PublicKey, err))
		}
		s.PublicKey = *req.PublicKey
	default:
		// As systemd: an empty --tpm2-public-key= looks as well.
		s.PublicKey = firstFile(f.Root, PublicKeyPaths(f.InInitrd, r.StubPublicKey))
	}
	if s.PublicKey == "" {
		s.PublicKeyPCRs = ""
	}

	if r.PCRLock {
		switch {
		case req.PCRLock == nil:
			s.PCRLock = firstFile(f.Root, PCRLockPaths)
		case *req.PCRLock != "":
			if _, err := os.ReadFile(*req.PCRLock); err != nil {
				errs = append(errs, fmt.Errorf("--tpm2-pcrlock=%s: %w", *req.PCRLock, err))
			}
			s.PCRLock = *req.PCRLock
		}
	}

	s.TPM2PCRs = r.DefaultPCRs
	if s.PCRLock != "" {
		s.TPM2PCRs = ""
	}
	if req.TPM2PCRs != nil {
		s.TPM2PCRs = *req.TPM2PCRs
		// An empty --tpm2-pcrs= binds no PCRs, but leaves a definition's
		// TPM2PCRs= in force (262).
		s.PCRsFromFlag = *req.TPM2PCRs != ""
	}
	return s, errors.Join(errs...)
}

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

// firstFile is the first of paths that exists under root, as a path
// relative to root ("" if none).
func firstFile(root string, paths []string) string {
	for _, p := range paths {
		if st, err := os.Stat(filepath.Join(root, p)); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// checkPEM reads a public key file: it must exist and hold PEM.
func checkPEM(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), "-----BEGIN ") {
		return errors.New("not a PEM file")
	}
	return nil
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
