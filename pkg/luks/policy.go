package luks

// The TPM2 policy of a run (encryption.Settings) from the command line,
// the files systemd looks for, and the rules of the systemd-repart
// version followed (encryption.Rules): Resolve reads the system, the
// rules are declared in pkg/encryption.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sprout-initrd/sprout/pkg/encryption"
)

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

// Resolve turns the request into the run's settings under the rules:
// the public key and pcrlock policy found, and the PCRs a volume gets
// unless its definition's TPM2PCRs= says otherwise (ForPartition). A
// file named on the command line that cannot be read is the error (the
// settings are complete otherwise): the caller refuses with it a run
// that enrolls a TPM2 key, before its first write (262 fails at the
// enrollment, after formatting).
func Resolve(req Request, r encryption.Rules, f Files) (encryption.Settings, error) {
	s := encryption.Settings{KeyFile: req.KeyFile, KeyFileFromFlag: req.KeyFile != "", TPM2Device: req.TPM2Device}
	var errs []error

	s.PublicKeyPCRs = encryption.DefaultPublicKeyPCRs
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
		s.PublicKey = firstFile(f.Root, encryption.PublicKeyPaths(f.InInitrd, r.StubPublicKey))
	}
	if s.PublicKey == "" {
		s.PublicKeyPCRs = ""
	}

	if r.PCRLock {
		switch {
		case req.PCRLock == nil:
			s.PCRLock = firstFile(f.Root, encryption.PCRLockPaths)
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
