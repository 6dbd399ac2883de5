// Package mkfs makes the file systems pkg/fstype declares, in the byte
// range of a future partition: it runs a format's program with the
// declared command line, or writes the header of a format sprout makes
// itself. It is also where sprout starts programs at all (Run, for mkfs
// and for pkg/luks) and finds them in $PATH.
package mkfs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/sprout-initrd/sprout/pkg/fstype"
)

// Runner runs one command line (Run in production).
type Runner func(ctx context.Context, args []string) error

// Target is the disk or image file being formatted (blockdev.Device).
type Target interface {
	io.WriterAt
	Path() string
	IsBlockDevice() bool
	Sync() error
}

// InRange makes req's file system in [off, off+size) of t when that
// needs no device node of its own: a format whose header sprout writes,
// or, on an image file, a program that takes an offset. done is false
// when the range needs a node that covers exactly it (OnNode over a loop
// device).
func InRange(ctx context.Context, run Runner, t Target, off, size int64, req fstype.Request) (done bool, err error) {
	f, err := lookup(req.Format)
	if err != nil {
		return true, err
	}
	if f.Header != nil {
		return true, writeHeader(f, t, off, size, req)
	}
	// An image file can be formatted in place by the tools that take an
	// offset; that needs no loop device (and no root).
	if t.IsBlockDevice() || f.InPlaceArgs == nil {
		return false, nil
	}
	if err := t.Sync(); err != nil {
		return true, err
	}
	return true, run(ctx, f.InPlaceArgs(req, t.Path(), off, size))
}

// OnNode makes req's file system on node, a device that covers exactly
// it: a loop device over the range, or an opened LUKS2 volume.
func OnNode(ctx context.Context, run Runner, node string, req fstype.Request) error {
	f, err := lookup(req.Format)
	if err != nil {
		return err
	}
	if f.Args != nil {
		return run(ctx, f.Args(req, node))
	}
	dev, err := os.OpenFile(node, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	size, err := dev.Seek(0, io.SeekEnd)
	if err == nil {
		err = writeHeader(f, dev, 0, size, req)
	}
	if err == nil {
		err = dev.Sync()
	}
	if cerr := dev.Close(); err == nil {
		err = cerr
	}
	return err
}

func lookup(format string) (fstype.FS, error) {
	f, ok := fstype.Lookup(format)
	if !ok {
		return f, fmt.Errorf("cannot make a %q file system", format)
	}
	return f, nil
}

// writeHeader writes a format's header (with the system's page size) at
// off of w.
func writeHeader(f fstype.FS, w io.WriterAt, off, size int64, req fstype.Request) error {
	page, err := f.Header(req, size, os.Getpagesize())
	if err != nil {
		return err
	}
	if _, err := w.WriteAt(page, off); err != nil {
		return fmt.Errorf("writing %s header at offset %d: %w", f.Name, off, err)
	}
	return nil
}

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
