package harness

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Probe runs low-level blkid on the byte range [offset, offset+size) of an
// image or device and returns its KEY=value pairs (TYPE, LABEL, UUID, …).
// An empty map means blkid found no signature.
func Probe(ctx context.Context, dev string, offset, size int64) (map[string]string, error) {
	res, err := Run(ctx, nil, "blkid", "-p", "-o", "export",
		"--offset", strconv.FormatInt(offset, 10), "--size", strconv.FormatInt(size, 10), dev)
	if err != nil {
		return nil, err
	}
	// 2: nothing found. Anything else but 0 is a probing failure.
	if res.ExitCode == 2 {
		return map[string]string{}, nil
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("%s: exit %d: %s", res.CommandLine(), res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	out := map[string]string{}
	for _, line := range strings.Split(res.Stdout, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && k != "DEVNAME" {
			out[k] = v
		}
	}
	return out, nil
}
