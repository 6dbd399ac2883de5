package blockdev

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/sprout-initrd/sprout/pkg/pollfree"
)

// Mount is what sprout needs of one line of mountinfo (proc_pid_mountinfo(5)).
type Mount struct {
	DevNum     string // "major:minor" of the mounted device ("0:…" when none)
	MountPoint string
	FSType     string
	Source     string
}

// Mounts reads the mount table, in the kernel's order (a later mount at
// the same place is on top).
func (r Paths) Mounts() ([]Mount, error) {
	path := r.orSystem().MountInfo
	data, err := pollfree.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var mounts []Mount
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for s.Scan() {
		// "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw"
		before, after, found := strings.Cut(s.Text(), " - ")
		left, right := strings.Fields(before), strings.Fields(after)
		if !found || len(left) < 5 || len(right) < 2 {
			continue
		}
		mounts = append(mounts, Mount{DevNum: left[2], MountPoint: unescapeMount(left[4]), FSType: right[0], Source: unescapeMount(right[1])})
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return mounts, nil
}

// Mounted reports whether a file system on the device devNum
// ("major:minor") is mounted in this mount namespace.
func (r Paths) Mounted(devNum string) (bool, error) {
	mounts, err := r.Mounts()
	if err != nil {
		return false, err
	}
	for _, m := range mounts {
		if m.DevNum == devNum {
			return true, nil
		}
	}
	return false, nil
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
