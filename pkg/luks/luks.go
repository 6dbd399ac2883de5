// Package luks makes the LUKS2 volume of an encrypted new partition
// (Encrypt= in repart.d) the way systemd-repart 252 does, through the
// cryptsetup and systemd-cryptenroll programs: format LUKS2 over a device
// that covers the future partition, open it, let the caller make the file
// system inside, close it, and enroll the TPM2 key.
//
// Why the programs and not a LUKS2 writer in Go: the volume must be opened
// (a dm-crypt table with the volume key in the kernel keyring) to make the
// file system inside it, and the TPM2 key must be sealed in the
// systemd-tpm2 token format that systemd-cryptsetup unlocks at boot. Both
// are cryptsetup's and systemd's own formats; writing them again in Go
// (LUKS2 JSON and binary headers, Argon2 benchmarks, the TPM2 sealing
// protocol) would be thousands of lines whose only test is the programs we
// would be avoiding, and an initrd that unlocks the volume at boot carries
// them anyway. sprout stays free of cgo: it only runs the programs.
package luks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/spec"
)

// MetadataSize is the room the LUKS2 header and key slots take at the
// start of the volume: the data start cryptsetup gives a LUKS2 volume by
// default, and what systemd-repart 252 adds to the minimum size of an
// encrypted partition (LUKS2_METADATA_SIZE; 253 raised it to 32 MiB).
const MetadataSize = 16 << 20

// Cipher and KeyBits are 252's LUKS2 parameters (luksDump of its
// volumes: aes-xts-plain64, a 256-bit volume key).
const (
	Cipher  = "aes-xts-plain64"
	KeyBits = 256
)

// Programs sprout runs for encryption.
const (
	Cryptsetup  = "cryptsetup"
	Cryptenroll = "systemd-cryptenroll"
)

// Settings are one volume's keys and TPM2 policy: the run's (Resolve),
// then its definition's (ForPartition).
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
	// --tpm2-pcrs= win over a definition's KeyFile= and TPM2PCRs=.
	KeyFileFromFlag, PCRsFromFlag bool
	// Enroller is the version of the systemd-cryptenroll that enrolls
	// the TPM2 key (Capabilities.CheckVolume sets it): the flags that
	// turn its own search for a public key and pcrlock policy off
	// depend on it.
	Enroller int
}

// Capabilities is what this system can do for encryption: the caller
// probes it (Probe) and the planner refuses a plan that needs more, so a
// dry run refuses what a real run would, before any write.
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
	// public key or pcrlock policy that cannot be read; Resolve): it
	// refuses a plan that makes a TPM2 volume, and only such a plan.
	Unusable error
	Settings
}

// Check returns an error when a volume of the given mode cannot be made.
func (c Capabilities) Check(mode spec.Encryption) error {
	if mode == spec.EncryptOff || !c.Probed {
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
func (c Capabilities) CheckVolume(mode spec.Encryption, s *Settings) error {
	if err := c.Check(mode); err != nil || !mode.UsesTPM2() {
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

// EnrollerVersion runs systemd-cryptenroll --version through output (the
// program's standard output) and reads systemd's version from it.
func EnrollerVersion(output func(args ...string) ([]byte, error)) (int, error) {
	out, err := output(Cryptenroll, "--version")
	if err != nil {
		return 0, fmt.Errorf("%s --version: %w", Cryptenroll, err)
	}
	var v int
	if _, err := fmt.Sscanf(string(out), "systemd %d", &v); err != nil {
		return 0, fmt.Errorf("%s --version printed no version: %q", Cryptenroll, strings.SplitN(string(out), "\n", 2)[0])
	}
	return v, nil
}

// Probe finds the programs (with lookPath, exec.LookPath) and the TPM2
// device: tpm2Device is --tpm2-device= ("" or "auto": the first
// /dev/tpmrmN the kernel lists under sysClass, /sys/class/tpmrm).
func Probe(s Settings, tpm2Device string, lookPath func(string) (string, error), sysClass string) Capabilities {
	c := Capabilities{Probed: true, Settings: s}
	_, err := lookPath(Cryptsetup)
	c.Cryptsetup = err == nil
	_, err = lookPath(Cryptenroll)
	c.Cryptenroll = err == nil
	c.TPM2Device, c.NoTPM2 = findTPM2(tpm2Device, sysClass)
	return c
}

func findTPM2(want, sysClass string) (dev, why string) {
	if want != "" && want != "auto" {
		st, err := os.Stat(want)
		switch {
		case err != nil:
			return "", fmt.Sprintf("--tpm2-device=%s: %v", want, err)
		case st.Mode()&os.ModeCharDevice == 0:
			return "", fmt.Sprintf("--tpm2-device=%s is not a character device", want)
		}
		return want, ""
	}
	names, _ := filepath.Glob(filepath.Join(sysClass, "tpmrm*"))
	if len(names) == 0 {
		return "", fmt.Sprintf("the kernel has no TPM2 device (nothing in %s)", sysClass)
	}
	return "/dev/" + filepath.Base(names[0]), ""
}

// Volume is one LUKS2 volume to make.
type Volume struct {
	Device     string // the device covering exactly the future partition
	UUID       uuid.UUID
	Label      string
	SectorSize int // the disk's logical sector size, as 252 passes it
	Mode       spec.Encryption
	Settings
}

// Runner runs one command line (mkfs.Run in production).
type Runner func(ctx context.Context, args []string) error

// Make formats v, opens it, calls inside with the mapping's device node,
// closes it and enrolls the TPM2 key, leaving the key slots 252 leaves:
//
//   - key-file:      slot 0, the key file's key (cryptsetup's default PBKDF)
//   - tpm2:          slot 0, the TPM2-sealed key, token systemd-tpm2
//   - key-file+tpm2: slot 0 the key file's, slot 1 the TPM2's
//
// For tpm2 alone a random key made here unlocks the volume until the TPM2
// key is enrolled; it is in slot 1 then (so the TPM2 key gets slot 0 and
// its area, as in 252) and wiped by the enrollment. tmpDir receives the
// key files and the volume key, on a RAM file system (/run in the
// initrd); they are removed.
func Make(ctx context.Context, run Runner, v Volume, tmpDir string, inside func(node string) error) (err error) {
	dir, err := os.MkdirTemp(tmpDir, "sprout-luks-")
	if err != nil {
		return fmt.Errorf("LUKS2 key directory: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(dir); err == nil && rerr != nil {
			err = rerr
		}
	}()
	key := v.KeyFile
	if key == "" || !v.Mode.UsesKeyFile() {
		key = filepath.Join(dir, "key")
		var data []byte
		if !v.Mode.UsesKeyFile() {
			if data, err = randomKey(64); err != nil {
				return err
			}
		}
		if err := os.WriteFile(key, data, 0o600); err != nil {
			return fmt.Errorf("LUKS2 key file: %w", err)
		}
	}
	name := "sprout-" + v.UUID.String()
	if _, err := os.Stat("/dev/mapper/" + name); err == nil {
		// A run killed in this boot left it open: close it before the
		// range is formatted again, and so the name is free.
		if err := run(ctx, CloseArgs(name)); err != nil {
			return fmt.Errorf("close the mapping a killed run left: %w", err)
		}
	}
	temporary := !v.Mode.UsesKeyFile()
	// The volume key is made here, so the volume can be opened with it:
	// opening through a key slot would cost another PBKDF run (2 s).
	volumeKey := filepath.Join(dir, "volume-key")
	vk, err := randomKey(KeyBits / 8)
	if err != nil {
		return err
	}
	if err := os.WriteFile(volumeKey, vk, 0o600); err != nil {
		return fmt.Errorf("LUKS2 volume key: %w", err)
	}
	if err := run(ctx, FormatArgs(v, volumeKey, key, temporary)); err != nil {
		return err
	}
	if err := run(ctx, OpenArgs(v.Device, name, volumeKey)); err != nil {
		return err
	}
	err = inside("/dev/mapper/" + name)
	if cerr := run(ctx, CloseArgs(name)); err == nil {
		err = cerr
	}
	if err != nil || !v.Mode.UsesTPM2() {
		return err
	}
	for _, args := range EnrollArgs(v, key, temporary) {
		if err := run(ctx, args); err != nil {
			return err
		}
	}
	return nil
}

// FormatArgs is the luksFormat command line: 252's cipher, key size,
// sector size, label and UUID, the given volume key, and key slot 0 for
// keyFile. A temporary key (tpm2 alone) gets a fast PBKDF: it is wiped
// once the TPM2 key is enrolled.
func FormatArgs(v Volume, volumeKey, keyFile string, temporary bool) []string {
	args := []string{Cryptsetup, "luksFormat", "--batch-mode", "--type", "luks2",
		"--cipher", Cipher, "--key-size", strconv.Itoa(KeyBits),
		"--sector-size", strconv.Itoa(v.SectorSize),
		"--uuid", v.UUID.String(), "--label", v.Label,
		"--volume-key-file", volumeKey, "--key-file", keyFile}
	if temporary {
		args = append(args, fastPBKDF...)
	}
	return append(args, v.Device)
}

// fastPBKDF is the cheapest PBKDF cryptsetup accepts, for a key that
// lives only until the TPM2 key is enrolled.
var fastPBKDF = []string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"}

// OpenArgs opens the volume as /dev/mapper/name with its volume key.
func OpenArgs(device, name, volumeKey string) []string {
	return []string{Cryptsetup, "open", "--type", "luks2", "--volume-key-file", volumeKey, device, name}
}

// CloseArgs closes the mapping.
func CloseArgs(name string) []string { return []string{Cryptsetup, "close", name} }

// EnrollArgs enroll the TPM2 key with systemd-cryptenroll, which writes
// the systemd-tpm2 token systemd-cryptsetup unlocks at boot. With a
// temporary key in slot 0 it is first copied to slot 1 and slot 0 wiped,
// so the TPM2 key lands in slot 0; the enrollment then wipes slot 1.
func EnrollArgs(v Volume, keyFile string, temporary bool) [][]string {
	enroll := append([]string{Cryptenroll, "--unlock-key-file=" + keyFile,
		"--tpm2-device=" + v.TPM2Device, "--tpm2-pcrs=" + v.TPM2PCRs}, policyArgs(v.Settings)...)
	if !temporary {
		return [][]string{append(enroll, v.Device)}
	}
	return [][]string{
		append(append([]string{Cryptsetup, "luksAddKey", "--batch-mode", "--key-file", keyFile, "--key-slot", "1"}, fastPBKDF...), v.Device, keyFile),
		{Cryptsetup, "luksKillSlot", "--batch-mode", "--key-file", keyFile, v.Device, "0"},
		append(enroll, "--wipe-slot=1", v.Device),
	}
}

// policyArgs pass the signed and pcrlock policies sprout decided on.
// systemd-cryptenroll looks for a public key and (from 255) a pcrlock
// policy itself when not given one, so "none" is said explicitly: an
// empty --tpm2-public-key= and --tpm2-pcrlock= turn its search off
// (observed on 257 and 262).
func policyArgs(s Settings) []string {
	var args []string
	if s.PublicKey != "" {
		args = append(args, "--tpm2-public-key="+s.PublicKey, "--tpm2-public-key-pcrs="+s.PublicKeyPCRs)
	} else {
		args = append(args, "--tpm2-public-key=")
	}
	switch {
	case s.PCRLock != "":
		args = append(args, "--tpm2-pcrlock="+s.PCRLock)
	case s.Enroller == 0 || s.Enroller >= PCRLockEnroller:
		args = append(args, "--tpm2-pcrlock=")
	}
	return args
}

// ErrNoKeyFile is returned when --key-file= cannot be read.
var ErrNoKeyFile = errors.New("cannot read the key file")

// CheckKeyFile reads --key-file= once, as 252 does at start-up, so an
// unreadable key stops the run before anything is written.
func CheckKeyFile(path string) error {
	if _, err := os.ReadFile(path); err != nil {
		return fmt.Errorf("%w: %w", ErrNoKeyFile, err)
	}
	return nil
}

// randomKey reads n bytes from the kernel's random source (/dev/urandom,
// as cryptsetup does; crypto/rand would cost every no-op run its
// initialisation).
func randomKey(n int) ([]byte, error) {
	f, err := os.Open("/dev/urandom")
	if err != nil {
		return nil, fmt.Errorf("random key: %w", err)
	}
	defer f.Close()
	key := make([]byte, n)
	if _, err := io.ReadFull(f, key); err != nil {
		return nil, fmt.Errorf("random key: %w", err)
	}
	return key, nil
}
