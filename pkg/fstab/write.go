package fstab

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Append is --append-fstab= (258): what happens to an fstab that exists.
type Append string

const (
	// AppendNo refuses to touch an existing file (the default).
	AppendNo Append = "no"
	// AppendAuto replaces the generated section of the existing file and
	// keeps the rest, after it.
	AppendAuto Append = "auto"
	// AppendReplace replaces the file.
	AppendReplace Append = "replace"
)

// ParseAppend reads --append-fstab=.
func ParseAppend(s string) (Append, error) {
	switch a := Append(s); a {
	case AppendNo, AppendAuto, AppendReplace:
		return a, nil
	}
	return "", errors.New("expected no, auto or replace")
}

// Merge returns what --append-fstab=auto makes of an existing fstab: the
// generated text first, then the old file without its first generated
// section, byte for byte as systemd-repart 262 does it (observed):
//   - the section starts at the first line that is exactly StartMarker
//     and ends with the first later line that is exactly EndMarker,
//     included; without such an end line it runs to the end of the file;
//   - a line ends at '\n' or '\r' (one byte: of "\r\n" only the '\r'
//     ends the marker line, the '\n' stays, as an empty line);
//   - the rest (what came before the section, then what came after it)
//     is kept as it was, a missing last newline too.
func Merge(old []byte, generated string) []byte {
	start, end := -1, -1
	for pos := 0; pos < len(old); {
		line, next := lineAt(old, pos)
		switch {
		case start < 0 && string(line) == StartMarker:
			start = pos
		case start >= 0 && string(line) == EndMarker:
			end = next
		}
		if end >= 0 {
			break
		}
		pos = next
	}
	rest := old
	if start >= 0 {
		if end < 0 {
			end = len(old)
		}
		rest = append(append([]byte{}, old[:start]...), old[end:]...)
	}
	return append([]byte(generated), rest...)
}

// lineAt returns the line starting at pos, without its end, and where
// the next one starts.
func lineAt(b []byte, pos int) ([]byte, int) {
	i := bytes.IndexAny(b[pos:], "\n\r")
	if i < 0 {
		return b[pos:], len(b)
	}
	return b[pos : pos+i], pos + i + 1
}

// Target is one file to write: where, and how (Append for the fstab;
// the crypttab is always AppendNo, as in systemd-repart).
type Target struct {
	Path   string
	Append Append
}

// Content returns the bytes the file at t.Path will hold, given the
// generated text, or an error when the run must not write it: the file
// exists and may not be touched (AppendNo; systemd-repart fails the same
// way, "File exists"), or its directory is missing or not a directory.
// changed is false when the file already holds exactly these bytes
// (then nothing is written: a run that changes nothing writes nothing;
// systemd-repart rewrites the same bytes).
// It only reads, so it serves the dry run's checks too.
func (t Target) Content(generated string) (content []byte, changed bool, err error) {
	dir := filepath.Dir(t.Path)
	if st, err := os.Stat(dir); err != nil {
		return nil, false, fmt.Errorf("%s: cannot write %s there: %w", dir, filepath.Base(t.Path), err)
	} else if !st.IsDir() {
		return nil, false, fmt.Errorf("%s: not a directory, cannot write %s there", dir, filepath.Base(t.Path))
	}
	old, err := os.ReadFile(t.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return []byte(generated), true, nil
	case err != nil:
		return nil, false, fmt.Errorf("%s: %w", t.Path, err)
	}
	switch t.Append {
	case AppendAuto:
		content = Merge(old, generated)
	case AppendReplace:
		content = []byte(generated)
	default:
		// Also when it holds what this run would write: 262 fails on any
		// existing file ("File exists"). At boot the files go where each
		// boot starts without them (the initrd's /etc, /run), or
		// --append-fstab= says what to do.
		return nil, false, fmt.Errorf("%s exists; it is not replaced (--append-fstab=auto or replace says what to do with an fstab; a crypttab is never replaced, as in systemd-repart)", t.Path)
	}
	return content, !bytes.Equal(old, content), nil
}

// Write puts content into path atomically: a temporary file in the same
// directory, synced, renamed over path, and the directory synced. A crash
// leaves the old file or the new one, never a part.
func Write(path string, content []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".sprout-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing left to remove
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(content); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
