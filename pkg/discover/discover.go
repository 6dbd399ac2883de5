// Package discover finds the disk sprout should work on when the command
// line names none — in the initrd, where the disk may be /dev/sda,
// /dev/vda or /dev/nvme0n1 and must never be guessed.
//
// Find asks, in order:
//
//  1. sprout.device= on the kernel command line (a /dev path, PARTLABEL=,
//     PARTUUID=, LABEL= or UUID=; a partition means the disk holding it);
//  2. the EFI variable LoaderDevicePartUUID, which systemd-boot sets to the
//     ESP it booted from;
//  3. root= on the kernel command line (the disk holding the root partition);
//  4. mount.usr= likewise;
//  5. the disk backing /sysusr/usr, then /sysroot, when mounted.
//
// The first method that is set decides. A method that is set but names no
// device, or names partitions on two different disks, is an error: falling
// through to a later method would be a guess (systemd issue 38907: repart
// wrote to the wrong NVMe disk). Methods that do not apply (not set,
// root=tmpfs, /sysroot on tmpfs) are skipped. Every answer, and every error,
// comes with the list of what was tried.
package discover

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/sprout-initrd/sprout/pkg/blockdev"
)

// Env says where Find looks. System returns the real paths; tests point the
// fields at fake trees.
type Env struct {
	ProcCmdline string // the kernel command line, /proc/cmdline
	EFIVars     string // efivarfs, /sys/firmware/efi/efivars
	SysBlock    string // the block class directory, /sys/class/block
	Dev         string // device nodes, /dev (with udev's /dev/disk/by-* links)
	MountInfo   string // /proc/self/mountinfo
	// OSRoot is the root whose os-release a FactoryResetRequest must
	// name ("/"), BootID the file with this boot's ID
	// (/proc/sys/kernel/random/boot_id).
	OSRoot, BootID string
}

// System is the Env of a running Linux system; the block layer's paths
// are blockdev's.
func System() Env {
	paths := blockdev.SystemPaths()
	return Env{
		ProcCmdline: "/proc/cmdline",
		EFIVars:     "/sys/firmware/efi/efivars",
		SysBlock:    paths.SysBlock,
		Dev:         paths.Dev,
		MountInfo:   paths.MountInfo,
		OSRoot:      "/",
		BootID:      "/proc/sys/kernel/random/boot_id",
	}
}

// Errors that Find's error wraps, for callers that map them to exit codes.
var (
	// ErrNotFound: no method applies, or the one that applies names no device.
	ErrNotFound = errors.New("no disk found")
	// ErrAmbiguous: the method that applies names more than one disk.
	ErrAmbiguous = errors.New("more than one disk matches")
)

// LoaderDevicePartUUIDVar is the efivarfs file name of systemd-boot's
// variable naming the partition it was loaded from.
const LoaderDevicePartUUIDVar = "LoaderDevicePartUUID-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"

// Find returns the /dev path of the whole disk to work on (for example
// /dev/vda), and tried: one line per method asked, saying what it found.
// tried is meant for logs; it is filled in on success too.
func Find(env Env) (disk string, tried []string, err error) {
	cmdline, cmdErr := readCmdline(env.ProcCmdline)
	sys := &sysfs{env: env}

	for _, m := range methods(env, cmdline, cmdErr) {
		spec, note := m.source()
		if spec == "" {
			tried = append(tried, m.name+": "+note)
			continue
		}
		res, err := m.resolve(sys, spec)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", m.name, err))
			return "", tried, &findError{method: m.name, err: err, tried: tried}
		}
		tried = append(tried, fmt.Sprintf("%s: %s", m.name, res.how))
		return res.disk, tried, nil
	}
	return "", tried, &findError{err: ErrNotFound, tried: tried}
}

// method is one way of naming the disk: where its value comes from, and how
// a value becomes a disk.
type method struct {
	name    string
	source  func() (spec, note string) // spec "" means the method does not apply
	resolve func(sys *sysfs, spec string) (found, error)
}

// found is a resolved disk and a sentence on how it was found.
type found struct {
	disk string
	how  string
}

func methods(env Env, cmdline map[string]string, cmdErr error) []method {
	fromCmdline := func(key string) func() (string, string) {
		return func() (string, string) {
			if cmdErr != nil {
				return "", fmt.Sprintf("kernel command line unreadable: %v", cmdErr)
			}
			v, ok := cmdline[key]
			switch {
			case !ok:
				return "", "not on the kernel command line"
			case v == "":
				return "", "empty"
			}
			if why := notADevice(v); why != "" {
				return "", fmt.Sprintf("%q %s", v, why)
			}
			return v, ""
		}
	}
	return []method{
		{name: "sprout.device=", source: fromCmdline("sprout.device"), resolve: resolveSpec},
		{name: "EFI variable LoaderDevicePartUUID", source: func() (string, string) {
			id, note := readLoaderDevicePartUUID(env.EFIVars)
			if id == "" {
				return "", note
			}
			return "PARTUUID=" + id, ""
		}, resolve: resolveSpec},
		{name: "root=", source: fromCmdline("root"), resolve: resolveSpec},
		{name: "mount.usr=", source: fromCmdline("mount.usr"), resolve: resolveSpec},
		{name: "mount /sysusr/usr", source: mountSource(env, "/sysusr/usr"), resolve: resolveMount},
		{name: "mount /sysroot", source: mountSource(env, "/sysroot"), resolve: resolveMount},
	}
}

// notADevice explains why a root=-style value names no block device
// ("" when it may name one).
func notADevice(v string) string {
	switch {
	case v == "tmpfs", v == "gpt-auto", v == "fstab", v == "off", v == "none":
		return "names no block device"
	case strings.HasPrefix(v, "/dev/"), strings.Contains(v, "="):
		return ""
	}
	return "is not a device (expected /dev/…, PARTLABEL=, PARTUUID=, LABEL= or UUID=)"
}

// findError lists everything Find tried.
type findError struct {
	method string
	err    error
	tried  []string
}

func (e *findError) Error() string {
	var b strings.Builder
	b.WriteString("finding the disk: ")
	if e.method != "" {
		b.WriteString(e.method + ": ")
	}
	b.WriteString(e.err.Error())
	b.WriteString("; tried: ")
	b.WriteString(strings.Join(e.tried, "; "))
	b.WriteString(". Name the disk: sprout DEVICE, or sprout.device= on the kernel command line")
	return b.String()
}

func (e *findError) Unwrap() error { return e.err }

// devPath maps a /dev/… path from the kernel command line into env.Dev.
func devPath(env Env, p string) string {
	rest, ok := strings.CutPrefix(p, "/dev/")
	if !ok {
		return p
	}
	return filepath.Join(env.Dev, rest)
}
