package discover

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sprout-initrd/sprout/pkg/sdvalue"
	"golang.org/x/sys/unix"
)

// FactoryResetVar is the efivarfs file name of systemd's FactoryReset
// variable, which asks the initrd for a factory reset.
const FactoryResetVar = "FactoryReset-8cf2644b-4b0b-428f-9387-6d876050dc67"

// fsImmutable is FS_IMMUTABLE_FL of linux/fs.h (chattr +i).
const fsImmutable = 0x10

// InInitrd reports whether sprout runs in an initrd, the way systemd
// decides it: $SYSTEMD_IN_INITRD when set, else /etc/initrd-release.
func InInitrd() bool {
	if v, ok := os.LookupEnv("SYSTEMD_IN_INITRD"); ok {
		if b, err := sdvalue.ParseBool(v); err == nil {
			return b
		}
	}
	_, err := os.Stat("/etc/initrd-release")
	return err == nil
}

// ResetRequest is a run's answer to "factory reset?" and who gave it.
type ResetRequest struct {
	Yes bool
	// Source names the system's request ("the EFI variable FactoryReset");
	// "" when --factory-reset= decided or nothing asked.
	Source string
}

// FactoryResetRequested decides whether a run resets, as 252 does:
// flag (--factory-reset=) when given; else, only in the initrd, what
// FactoryResetRequest finds on the kernel command line or in the EFI
// variable. An error means the request could not be read.
func FactoryResetRequested(env Env, flag *bool) (ResetRequest, error) {
	if flag != nil {
		return ResetRequest{Yes: *flag}, nil
	}
	if !InInitrd() {
		return ResetRequest{}, nil
	}
	yes, source, err := FactoryResetRequest(env)
	return ResetRequest{Yes: yes, Source: source}, err
}

// FactoryResetRequest says whether the kernel command line
// (systemd.factory_reset=BOOL, which decides when present) or the EFI
// variable FactoryReset asks for a factory reset, as systemd-repart 252
// checks in the initrd, and which of them said so.
func FactoryResetRequest(env Env) (requested bool, source string, err error) {
	args, err := readCmdline(env.ProcCmdline)
	if err != nil {
		return false, "", err
	}
	if v, ok := args["systemd.factory_reset"]; ok {
		b := true // a bare word switches it on
		if v != "" {
			if b, err = sdvalue.ParseBool(v); err != nil {
				return false, "", fmt.Errorf("kernel command line systemd.factory_reset=%s: %w", v, err)
			}
		}
		return b, "the kernel command line (systemd.factory_reset=" + v + ")", nil
	}
	value, ok, err := readEFIString(filepath.Join(env.EFIVars, FactoryResetVar))
	if err != nil || !ok {
		return false, "", err
	}
	b, err := sdvalue.ParseBool(value)
	if err != nil {
		return false, "", fmt.Errorf("EFI variable FactoryReset=%q: %w", value, err)
	}
	return b, "the EFI variable FactoryReset", nil
}

// RemoveFactoryResetVar deletes the EFI variable once the reset is done,
// so the next boot does not reset again. efivarfs files are immutable
// until the flag is cleared. A variable that is not there is no error.
func RemoveFactoryResetVar(env Env) error {
	path := filepath.Join(env.EFIVars, FactoryResetVar)
	if f, err := os.Open(path); err == nil {
		if flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS); err == nil && flags&fsImmutable != 0 {
			// Best effort: on a file system without the flag the
			// unlink below says what is wrong.
			_ = unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags&^fsImmutable))
		}
		f.Close()
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove EFI variable FactoryReset: %w", err)
	}
	return nil
}

// readEFIString reads an efivarfs variable holding a UTF-16LE string. The
// file is read with a single read call from its start: efivarfs returns
// the whole variable at once and does not support partial reads.
func readEFIString(path string) (value string, ok bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read EFI variable: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 64*1024)
	n, err := f.Read(buf)
	if err != nil {
		return "", false, fmt.Errorf("read EFI variable %s: %w", filepath.Base(path), err)
	}
	str, ok := decodeEFIString(buf[:n])
	if !ok {
		return "", false, fmt.Errorf("EFI variable %s is malformed (not a UTF-16 string)", filepath.Base(path))
	}
	return str, true, nil
}
