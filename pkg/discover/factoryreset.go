package discover

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"

	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/hostfacts"
	"github.com/sprout-initrd/sprout/pkg/sdvalue"
	"golang.org/x/sys/unix"
)

// FactoryResetVar is the efivarfs file name of systemd's FactoryReset
// variable, which asks the initrd for a factory reset.
const FactoryResetVar = "FactoryReset-8cf2644b-4b0b-428f-9387-6d876050dc67"

// FactoryResetRequestVar is the efivarfs file name of the variable that
// replaced it in 258: systemd-factory-reset request writes it, a JSON
// object naming the requesting OS and boot.
const FactoryResetRequestVar = "FactoryResetRequest-8cf2644b-4b0b-428f-9387-6d876050dc67"

// requestVariable: which EFI variable asks for a reset. 258 replaced
// FactoryReset by FactoryResetRequest (NEWS 258; observed: 257 honours
// only the first, 262 only the second).
var requestVariable = compat.ByVersion[bool]{{Since: 252, Value: false}, {Since: 258, Value: true}}

// RequestVariable reports whether systemd-repart v reads
// FactoryResetRequest (and leaves it after the reset) rather than
// FactoryReset (which it removes).
func RequestVariable(v compat.Version) bool { return requestVariable.At(v) }

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

// FactoryResetRequested decides whether a run resets, as systemd-repart
// does: flag (--factory-reset=) when given; else, only in the initrd,
// what FactoryResetRequest finds on the kernel command line or in the EFI
// variable (FactoryResetRequest from 258). An error means the request
// could not be read, or was not for this boot.
func FactoryResetRequested(env Env, flag *bool, v compat.Version) (ResetRequest, error) {
	if flag != nil {
		return ResetRequest{Yes: *flag}, nil
	}
	if !InInitrd() {
		return ResetRequest{}, nil
	}
	yes, source, err := FactoryResetRequest(env, RequestVariable(v))
	return ResetRequest{Yes: yes, Source: source}, err
}

// FactoryResetRequest says whether the kernel command line
// (systemd.factory_reset=BOOL, which decides when present) or an EFI
// variable asks for a factory reset, as systemd-repart checks in the
// initrd, and which of them said so. The variable is FactoryReset, a
// boolean, up to 257; from 258 (request) it is FactoryResetRequest
// (FactoryResetRequestFor), and FactoryReset is ignored.
func FactoryResetRequest(env Env, request bool) (requested bool, source string, err error) {
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
	if request {
		return factoryResetRequestVar(env)
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

// resetRequest is the JSON of FactoryResetRequest (what
// systemd-factory-reset request writes, observed on 262).
type resetRequest struct {
	OSReleaseID      *string `json:"osReleaseId"`
	OSReleaseImageID *string `json:"osReleaseImageId"`
	BootID           *string `json:"bootId"`
}

// factoryResetRequestVar reads FactoryResetRequest as 262 honours it: a
// request of this OS (its os-release ID=, and IMAGE_ID= when either side
// has one) made in an earlier boot (bootId, another boot's ID). A request
// made in this boot is for the next one; one of another OS (a multi-boot
// machine) is not ours. Unlike FactoryReset, the variable is not removed
// after the reset: systemd-factory-reset-complete.service does that once
// every service of factory-reset-now.target is done.
func factoryResetRequestVar(env Env) (bool, string, error) {
	const name = "EFI variable FactoryResetRequest"
	value, ok, err := readEFIString(filepath.Join(env.EFIVars, FactoryResetRequestVar))
	if err != nil || !ok {
		return false, "", err
	}
	var req resetRequest
	if err := json.Unmarshal([]byte(value), &req); err != nil {
		return false, "", fmt.Errorf("%s is not the JSON systemd-factory-reset writes: %w", name, err)
	}
	osRelease, err := hostfacts.ReadOSRelease(env.OSRoot)
	if err != nil {
		return false, "", fmt.Errorf("%s: cannot tell which OS this is: %w", name, err)
	}
	switch {
	case req.OSReleaseID == nil || req.BootID == nil:
		return false, "", fmt.Errorf("%s names no OS or boot (osReleaseId, bootId): %s", name, value)
	case *req.OSReleaseID != osRelease["ID"] || deref(req.OSReleaseImageID) != osRelease["IMAGE_ID"]:
		return false, "", fmt.Errorf("%s asks another OS (ID=%s IMAGE_ID=%s) for a reset; this is ID=%s IMAGE_ID=%s",
			name, *req.OSReleaseID, deref(req.OSReleaseImageID), osRelease["ID"], osRelease["IMAGE_ID"])
	}
	requester, err := uuid.Parse(*req.BootID)
	if err != nil {
		return false, "", fmt.Errorf("%s: bootId %q is not a boot ID", name, *req.BootID)
	}
	b, err := os.ReadFile(env.BootID)
	if err != nil {
		return false, "", fmt.Errorf("%s: this boot's ID: %w", name, err)
	}
	if this, err := uuid.Parse(strings.TrimSpace(string(b))); err == nil && this == requester {
		return false, "", fmt.Errorf("%s was made in this boot: it asks the next boot for a reset", name)
	}
	return true, "the " + name + " (made in boot " + strings.ReplaceAll(requester.String(), "-", "") + ")", nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
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
	// Sized from the file (efivarfs gives a variable's size), so on the
	// heap and only once the variable exists: a 64 KiB buffer of constant
	// size went on the stack, and every initrd boot grew its stack to
	// 128 KiB on calling this, variable or not (docs/benchmarks.md).
	size := int64(64 * 1024)
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 && fi.Size() < size {
		size = fi.Size() + 1
	}
	buf := make([]byte, size)
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
