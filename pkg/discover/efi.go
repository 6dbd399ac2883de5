package discover

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf16"

	"github.com/google/uuid"
)

// readLoaderDevicePartUUID returns the partition UUID in systemd-boot's
// LoaderDevicePartUUID variable (lower case), or "" and why not.
//
// An efivarfs file is 4 bytes of attributes, then the value; this value is
// a UTF-16LE string, usually NUL-terminated, such as
// "0FC63DAF-8483-4772-8E79-3D69D8477DE4".
func readLoaderDevicePartUUID(efivars string) (id, note string) {
	path := filepath.Join(efivars, LoaderDevicePartUUIDVar)
	b, err := readEFIVar(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if _, derr := os.Stat(efivars); derr != nil {
			return "", "not set (no efivarfs: not booted with UEFI, or not mounted)"
		}
		return "", "not set (the boot loader does not set it)"
	case err != nil:
		return "", "unreadable: " + err.Error()
	}
	str, ok := decodeEFIString(b)
	if !ok {
		return "", "malformed (not a UTF-16 string)"
	}
	text := strings.TrimSpace(str)
	u, err := uuid.Parse(text)
	if err != nil {
		return "", "malformed: " + err.Error()
	}
	return u.String(), ""
}

// maxEFIVar bounds the variables read here; LoaderDevicePartUUID is 78
// bytes.
const maxEFIVar = 4096

// readEFIVar reads an efivarfs file with one read(2) of the whole file from
// its start. efivarfs files cannot be seeked and are read as a whole (GNU
// tail -c +5 fails on them with "Illegal seek"), so no seek and no pread
// at an offset.
func readEFIVar(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, maxEFIVar+1)
	n, err := f.Read(buf)
	switch {
	case err != nil && !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("reading %s: %w", path, err)
	case n > maxEFIVar:
		return nil, fmt.Errorf("reading %s: larger than %d bytes", path, maxEFIVar)
	}
	return buf[:n], nil
}

// decodeEFIString decodes an efivarfs file holding a string: 4 attribute bytes,
// then UTF-16LE text up to the first NUL. ok is false when the length
// cannot be that.
func decodeEFIString(b []byte) (s string, ok bool) {
	if len(b) < 4 || (len(b)-4)%2 != 0 {
		return "", false
	}
	units := make([]uint16, 0, (len(b)-4)/2)
	for i := 4; i+1 < len(b); i += 2 {
		u := binary.LittleEndian.Uint16(b[i:])
		if u == 0 {
			break
		}
		units = append(units, u)
	}
	return string(utf16.Decode(units)), true
}
