package fstype

import (
	"fmt"

	"github.com/sprout-initrd/sprout/pkg/compat"
)

// Capabilities is what the running system can make: the caller probes
// it (Probe) and passes it to the planner in plan.Options.
type Capabilities struct {
	// PageSize is the swap page size; 0 means 4096.
	PageSize int
	// Have reports whether a mkfs program is present. Nil means not
	// probed: every program is assumed present (for planning without a
	// system, as the planner's own tests do).
	Have func(program string) bool
}

// Probe returns the capabilities of a system whose programs lookPath
// (exec.LookPath) finds, so a run without them is refused before any
// write. A program is looked up the first time the planner asks about
// it, at most once: a no-op run, which makes no file system, searches
// $PATH for nothing.
func Probe(pageSize int, lookPath func(string) (string, error)) Capabilities {
	found := map[string]bool{}
	return Capabilities{PageSize: pageSize, Have: func(program string) bool {
		have, done := found[program]
		if !done {
			_, err := lookPath(program)
			have = err == nil
			found[program] = have
		}
		return have
	}}
}

// Check returns an error when a file system of the format cannot be made
// in size bytes here, mirroring systemd version v: an unknown format, a
// missing program, too small.
func (c Capabilities) Check(v compat.Version, format string, size int64) error {
	f, ok := Lookup(format)
	if !ok {
		return fmt.Errorf("cannot make a %q file system", format)
	}
	if f.Program != "" && c.Have != nil && !c.Have(f.Program) {
		return fmt.Errorf("%s is needed to make %s but was not found in $PATH", f.Program, format)
	}
	page := c.PageSize
	if page <= 0 {
		page = 4096
	}
	if min := f.MinSize(v, page); size < min {
		return fmt.Errorf("%d bytes is too small for %s (it needs at least %d bytes)", size, format, min)
	}
	return nil
}
