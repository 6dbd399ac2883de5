package repartd

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sprout-initrd/sprout/pkg/compat"
)

// added names the systemd-repart version that added each key sprout
// reads after 252 (repart.d(5)'s "Added in version", confirmed on the
// oracles: 257 ignores TPM2PCRs= and KeyFile= with a warning, 262 reads
// them).
var added = map[string]compat.Version{
	"TPM2PCRs": 259, "KeyFile": 259,
}

// RequireVersion refuses a definition that uses a key the systemd-repart
// version v does not have, naming file:line and the version that added
// it: such a file was written for a newer systemd, and v would ignore
// the line.
func RequireVersion(defs []Definition, v compat.Version) error {
	for _, d := range defs {
		for key, since := range added {
			where, used := d.Lines[key]
			if !used || v.OrDefault() >= since {
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
