// Package mkfs makes file systems in the byte range of a future
// partition. It runs the distribution's mkfs tools with the options
// systemd-repart 252 uses (so the file systems are the same), except for
// swap, whose one-page header sprout writes itself.
package mkfs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/fstype"
)

// Request describes one file system to make.
type Request struct {
	Format  string    // ext2, ext3, ext4, vfat, swap, xfs or btrfs
	Label   string    // the partition label; shortened per file system
	UUID    uuid.UUID // the file system UUID (vfat uses its first 4 bytes)
	Discard bool      // let mkfs discard the range first
}

// Program is the mkfs binary a format needs ("" for swap, made in Go),
// from the format table.
func Program(format string) string {
	f, _ := fstype.Lookup(format)
	return f.Program
}

// Args returns the command line that formats node, which covers exactly
// the partition: systemd-repart 252's options for each file system.
func Args(req Request, node string) ([]string, error) {
	id := req.UUID.String()
	switch req.Format {
	case "ext2", "ext3", "ext4":
		args := []string{Program(req.Format), "-q", "-L", ExtLabel(req.Label), "-U", id, "-I", "256"}
		if req.Format != "ext2" {
			args = append(args, "-O", "has_journal")
		}
		discard := "nodiscard"
		if req.Discard {
			discard = "discard"
		}
		return append(args, "-m", "0", "-E", discard+",lazy_itable_init=1", "-T", "default", node), nil
	case "vfat":
		return []string{Program(req.Format), "-i", VfatID(req.UUID), "-n", VfatLabel(req.Label), "-F", "32", node}, nil
	case "xfs":
		args := []string{Program(req.Format), "-q", "-L", truncateUTF8(req.Label, 12), "-m", "uuid=" + id, "-m", "reflink=1", node}
		if !req.Discard {
			args = append(args, "-K")
		}
		return args, nil
	case "btrfs":
		args := []string{Program(req.Format), "-q", "-L", req.Label, "-U", id, node}
		if !req.Discard {
			args = append(args, "--nodiscard")
		}
		return args, nil
	}
	return nil, fmt.Errorf("cannot make a %q file system", req.Format)
}

// OffsetArgs returns a command line that formats [offset, offset+size) of
// the regular file path in place, for the tools that can (ext2/3/4 and
// vfat); ok is false for the others. The options are Args' plus the
// range, and -F: mke2fs sees the image's partition table at offset 0 and
// would otherwise ask for confirmation.
func OffsetArgs(req Request, path string, offset, size int64) (args []string, ok bool) {
	switch req.Format {
	case "ext2", "ext3", "ext4":
		a, _ := Args(req, path)
		a = a[:len(a)-1]
		for i := range a {
			if a[i] == "-E" {
				a[i+1] = fmt.Sprintf("%s,offset=%d", a[i+1], offset)
			}
		}
		return append(a, "-F", path, fmt.Sprintf("%dk", size/1024)), true
	case "vfat":
		a, _ := Args(req, path)
		a = a[:len(a)-1]
		return append(a, fmt.Sprintf("--offset=%d", offset/512), path, fmt.Sprint(size/1024)), true
	}
	return nil, false
}

// ExtLabel cuts a label to ext's 16 bytes without splitting a character.
func ExtLabel(label string) string { return truncateUTF8(label, 16) }

// SwapLabel cuts a label to the 15 bytes the swap header holds.
func SwapLabel(label string) string { return truncateUTF8(label, 15) }

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// VfatLabel turns a label into an 11-character FAT volume label: ASCII
// upper case, with characters FAT forbids (and non-ASCII) as '_'.
func VfatLabel(label string) string {
	var b strings.Builder
	for _, r := range label {
		if b.Len() == 11 {
			break
		}
		switch {
		case r >= 0x80 || r < 0x20 || r == 0x7f || strings.ContainsRune(`*?.,;:/\|+=<>[]"`, r):
			b.WriteByte('_')
		default:
			b.WriteString(strings.ToUpper(string(r)))
		}
	}
	return b.String()
}

// VfatID is the FAT volume serial number: the first four bytes of the
// file system UUID.
func VfatID(u uuid.UUID) string { return fmt.Sprintf("%08x", u[:4]) }

// Run executes a command line and returns its combined output in the
// error when it fails.
func Run(ctx context.Context, args []string) error {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// Capabilities is what this system can make (mkfs programs in $PATH,
// looked up when the planner asks; the page size for swap).
func Capabilities() fstype.Capabilities {
	return fstype.Probe(os.Getpagesize(), exec.LookPath)
}

// LookPath finds a program in $PATH (exec.LookPath), for the other
// programs a plan needs (cryptsetup): os/exec stays behind this package.
func LookPath(name string) (string, error) { return exec.LookPath(name) }

// Output runs a program and returns its standard output (for
// systemd-cryptenroll --version): os/exec stays behind this package.
func Output(args ...string) ([]byte, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd.Output()
}
