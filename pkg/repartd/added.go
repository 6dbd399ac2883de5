package repartd

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sprout-initrd/sprout/pkg/compat"
)

// RequireVersion refuses a definition that uses a key the systemd-repart
// version v does not have (keys.go), naming file:line and the version
// that added it: such a file was written for a newer systemd, and v would
// ignore the line. Load does the same for each line as it reads it, when
// given the version; this checks definitions read without one.
func RequireVersion(defs []Definition, v compat.Version) error {
	for _, d := range defs {
		for key, where := range d.Lines {
			since := compat.Version(keys[key].since)
			if v.OrDefault() >= since {
				continue
			}
			e := &Error{File: where, Key: key,
				Msg: fmt.Sprintf("%s= needs systemd-repart %d or later, but --compat=%d follows systemd-repart %d", key, since, v.OrDefault(), v.OrDefault())}
			if i := strings.LastIndexByte(where, ':'); i > 0 {
				if n, err := strconv.Atoi(where[i+1:]); err == nil {
					e.File, e.Line = where[:i], n
				}
			}
			return e
		}
	}
	return nil
}
