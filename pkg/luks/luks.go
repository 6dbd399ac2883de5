// Package luks makes the LUKS2 volume of an encrypted new partition
// (Encrypt= in repart.d) the way systemd-repart 252 does, through the
// cryptsetup and systemd-cryptenroll programs: format LUKS2 over a device
// that covers the future partition, open it, let the caller make the file
// system inside, close it, and enroll the TPM2 key. It also probes what
// the system has for that (Probe). The modes and the LUKS2 facts are
// declared in pkg/encryption; this package only executes them.
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
	"github.com/sprout-initrd/sprout/pkg/encryption"
)

// Probe finds the programs (with lookPath, exec.LookPath) and the TPM2
// device: tpm2Device is --tpm2-device= ("" or "auto": the first
// /dev/tpmrmN the kernel lists under sysClass, /sys/class/tpmrm).
func Probe(s encryption.Settings, tpm2Device string, lookPath func(string) (string, error), sysClass string) encryption.Capabilities {
	c := encryption.Capabilities{Probed: true, Settings: s}
	_, err := lookPath(encryption.Cryptsetup)
	c.Cryptsetup = err == nil
	_, err = lookPath(encryption.Cryptenroll)
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
	SectorSize int // the volume's sector size (the plan's: the version's)
	KeyBits    int // the volume key's size
	Mode       encryption.Mode
	encryption.Settings
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
	if v.KeyBits <= 0 || v.KeyBits%8 != 0 {
		return fmt.Errorf("LUKS2 volume: invalid volume key size %d bits", v.KeyBits)
	}
	temporary := !v.Mode.UsesKeyFile()
	// The volume key is made here, so the volume can be opened with it:
	// opening through a key slot would cost another PBKDF run (2 s).
	volumeKey := filepath.Join(dir, "volume-key")
	vk, err := randomKey(v.KeyBits / 8)
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
	args := []string{encryption.Cryptsetup, "luksFormat", "--batch-mode", "--type", "luks2",
		"--cipher", encryption.Cipher, "--key-size", strconv.Itoa(v.KeyBits),
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
	return []string{encryption.Cryptsetup, "open", "--type", "luks2", "--volume-key-file", volumeKey, device, name}
}

// CloseArgs closes the mapping.
func CloseArgs(name string) []string { return []string{encryption.Cryptsetup, "close", name} }

// EnrollArgs enroll the TPM2 key with systemd-cryptenroll, which writes
// the systemd-tpm2 token systemd-cryptsetup unlocks at boot. With a
// temporary key in slot 0 it is first copied to slot 1 and slot 0 wiped,
// so the TPM2 key lands in slot 0; the enrollment then wipes slot 1.
func EnrollArgs(v Volume, keyFile string, temporary bool) [][]string {
	enroll := append([]string{encryption.Cryptenroll, "--unlock-key-file=" + keyFile,
		"--tpm2-device=" + v.TPM2Device, "--tpm2-pcrs=" + v.TPM2PCRs}, policyArgs(v.Settings)...)
	if !temporary {
		return [][]string{append(enroll, v.Device)}
	}
	return [][]string{
		append(append([]string{encryption.Cryptsetup, "luksAddKey", "--batch-mode", "--key-file", keyFile, "--key-slot", "1"}, fastPBKDF...), v.Device, keyFile),
		{encryption.Cryptsetup, "luksKillSlot", "--batch-mode", "--key-file", keyFile, v.Device, "0"},
		append(enroll, "--wipe-slot=1", v.Device),
	}
}

// policyArgs pass the signed and pcrlock policies sprout decided on.
// systemd-cryptenroll looks for a public key and (from 255) a pcrlock
// policy itself when not given one, so "none" is said explicitly: an
// empty --tpm2-public-key= and --tpm2-pcrlock= turn its search off
// (observed on 257 and 262; 252 has no --tpm2-pcrlock=).
func policyArgs(s encryption.Settings) []string {
	var args []string
	if s.PublicKey != "" {
		args = append(args, "--tpm2-public-key="+s.PublicKey, "--tpm2-public-key-pcrs="+s.PublicKeyPCRs)
	} else {
		args = append(args, "--tpm2-public-key=")
	}
	switch {
	case s.PCRLock != "":
		args = append(args, "--tpm2-pcrlock="+s.PCRLock)
	case s.Enroller == 0 || s.Enroller >= encryption.PCRLockEnroller:
		args = append(args, "--tpm2-pcrlock=")
	}
	return args
}

// EnrollerVersion runs systemd-cryptenroll --version through output (the
// program's standard output) and reads systemd's version from it.
func EnrollerVersion(output func(args ...string) ([]byte, error)) (int, error) {
	out, err := output(encryption.Cryptenroll, "--version")
	if err != nil {
		return 0, fmt.Errorf("%s --version: %w", encryption.Cryptenroll, err)
	}
	var v int
	if _, err := fmt.Sscanf(string(out), "systemd %d", &v); err != nil {
		line, _, _ := strings.Cut(string(out), "\n")
		return 0, fmt.Errorf("%s --version printed no version: %q", encryption.Cryptenroll, line)
	}
	return v, nil
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
