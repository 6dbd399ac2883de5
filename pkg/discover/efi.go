package discover

import (
	"encoding/binary"
	"errors"
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
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if _, derr := os.Stat(efivars); derr != nil {
			return "", "not set (no efivarfs: not booted with UEFI, or not mounted)"
		}
		return "", "not set (the boot loader does not set it)"
	case err != nil:
		return "", "unreadable: " + err.Error()
	case len(b) < 4 || (len(b)-4)%2 != 0:
		return "", "malformed (not a UTF-16 string)"
	}
	units := make([]uint16, 0, (len(b)-4)/2)
	for i := 4; i+1 < len(b); i += 2 {
		u := binary.LittleEndian.Uint16(b[i:])
		if u == 0 {
			break
		}
		units = append(units, u)
	}
	text := strings.TrimSpace(string(utf16.Decode(units)))
	u, err := uuid.Parse(text)
	if err != nil {
		return "", "malformed: " + err.Error()
	}
	return u.String(), ""
}
