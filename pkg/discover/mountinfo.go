package discover

import (
	"fmt"
	"strings"

	"github.com/sprout-initrd/sprout/pkg/blockdev"
)

// findMount returns the last (topmost) mount at mountPoint, if any.
func findMount(env Env, mountPoint string) (blockdev.Mount, bool, error) {
	mounts, err := env.paths().Mounts()
	if err != nil {
		return blockdev.Mount{}, false, err
	}
	var last blockdev.Mount
	ok := false
	for _, m := range mounts {
		if m.MountPoint == mountPoint {
			last, ok = m, true
		}
	}
	return last, ok, nil
}

// mountSource is the source of the "mount" methods: the mount's device
// number, or "" when nothing (or nothing block-backed) is mounted there.
func mountSource(env Env, mountPoint string) func() (string, string) {
	return func() (string, string) {
		m, ok, err := findMount(env, mountPoint)
		switch {
		case err != nil:
			return "", err.Error()
		case !ok:
			return "", "not mounted"
		case strings.HasPrefix(m.DevNum, "0:"):
			// tmpfs, overlay, or btrfs (whose st_dev is anonymous): only
			// a /dev source can name its device.
			if strings.HasPrefix(m.Source, "/dev/") {
				return "path:" + m.Source, ""
			}
			return "", fmt.Sprintf("mounted from %s (%s), not a block device", m.Source, m.FSType)
		}
		return "devnum:" + m.DevNum, ""
	}
}
