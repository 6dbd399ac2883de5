package discover

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/sprout-initrd/sprout/pkg/plainfile"
)

// mountEntry is what Find needs of one line of /proc/self/mountinfo.
type mountEntry struct {
	devNum string // "major:minor"
	fsType string
	source string
}

// findMount returns the last (topmost) mount at mountPoint, if any.
func findMount(path, mountPoint string) (mountEntry, bool, error) {
	data, err := plainfile.ReadFile(path)
	if err != nil {
		return mountEntry{}, false, fmt.Errorf("reading %s: %w", path, err)
	}
	var last mountEntry
	ok := false
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for s.Scan() {
		// "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw"
		before, after, found := strings.Cut(s.Text(), " - ")
		left, right := strings.Fields(before), strings.Fields(after)
		if !found || len(left) < 5 || len(right) < 2 {
			continue
		}
		if unescapeMount(left[4]) != mountPoint {
			continue
		}
		last = mountEntry{devNum: left[2], fsType: right[0], source: unescapeMount(right[1])}
		ok = true
	}
	if err := s.Err(); err != nil {
		return mountEntry{}, false, fmt.Errorf("reading %s: %w", path, err)
	}
	return last, ok, nil
}

// unescapeMount undoes the kernel's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountSource is the source of the "mount" methods: the mount's device
// number, or "" when nothing (or nothing block-backed) is mounted there.
func mountSource(env Env, mountPoint string) func() (string, string) {
	return func() (string, string) {
		m, ok, err := findMount(env.MountInfo, mountPoint)
		switch {
		case err != nil:
			return "", err.Error()
		case !ok:
			return "", "not mounted"
		case strings.HasPrefix(m.devNum, "0:"):
			// tmpfs, overlay, or btrfs (whose st_dev is anonymous): only
			// a /dev source can name its device.
			if strings.HasPrefix(m.source, "/dev/") {
				return "path:" + m.source, ""
			}
			return "", fmt.Sprintf("mounted from %s (%s), not a block device", m.source, m.fsType)
		}
		return "devnum:" + m.devNum, ""
	}
}
