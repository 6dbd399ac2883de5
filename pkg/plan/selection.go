package plan

// Which definitions a run acts on (--include-partitions=,
// --exclude-partitions=, the --defer-partitions* flags; systemd 253 and
// 259), and what sprout refuses to create at boot.

import (
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/repartd"
)

// Selection chooses partitions by type, as systemd-repart 262 does
// (observed):
//   - an excluded definition (its type is in Exclude, or Include is not
//     empty and its type is not in it) is dropped before planning, as if
//     its file did not exist: an existing partition of that type becomes
//     foreign and is not grown;
//   - a deferred definition is planned as usual (its space is reserved,
//     its entry number taken) but not written: a new partition is not
//     created, an existing one not grown. A later run without the flag
//     creates it where it was planned.
type Selection struct {
	Include, Exclude []uuid.UUID
	Defer            []uuid.UUID
	// DeferEmpty defers the definitions whose label is "_empty"
	// (Format=empty without Label=, or Label=_empty).
	DeferEmpty bool
	// DeferFactoryReset defers the definitions with FactoryReset=yes.
	DeferFactoryReset bool
}

func (s Selection) excludes(typ uuid.UUID) bool {
	if len(s.Include) > 0 {
		return !slices.Contains(s.Include, typ)
	}
	return slices.Contains(s.Exclude, typ)
}

func (s Selection) defers(d *repartd.Definition) bool {
	return slices.Contains(s.Defer, d.Type) ||
		s.DeferEmpty && d.HasEmptyLabel() ||
		s.DeferFactoryReset && d.FactoryReset
}

// selected returns the definitions the run acts on, in their order.
func (s Selection) selected(defs []repartd.Definition) []repartd.Definition {
	if len(s.Include) == 0 && len(s.Exclude) == 0 {
		return defs
	}
	out := make([]repartd.Definition, 0, len(defs))
	for _, d := range defs {
		if !s.excludes(d.Type) {
			out = append(out, d)
		}
	}
	return out
}

// markDeferred flags the members the run plans but does not write.
func (l *layout) markDeferred(s Selection) {
	for _, m := range l.members {
		m.deferred = m.def != nil && s.defers(m.def)
	}
}

// checkCreatable refuses, naming file:line, a new partition sprout would
// have to fill or cannot make: content (CopyFiles=, CopyBlocks=,
// MakeDirectories=, MakeSymlinks=, Verity=, Minimize=: sprout never
// creates content at boot), a file system sprout has no mkfs for, a
// read-only subvolume or a DefaultSubvolume= that a new, empty btrfs
// does not have (262 fails on them while formatting; it makes the top
// level read-only for "/:ro", which sprout does not do either). Dropped and deferred partitions are not created, and
// an existing partition is not touched: these keys have no effect there.
func (l *layout) checkCreatable() error {
	for _, m := range l.members {
		if m.def == nil || m.exists || m.dropped || m.deferred {
			continue
		}
		d := m.def
		if k, ok := d.Fills(); ok {
			return fmt.Errorf("%s: %s=%s would fill the new partition of %s with content; sprout does not create content at boot (build the partition into the image, where this definition has no effect)",
				k.Where, k.Key, k.Value, d.File)
		}
		if d.Format != "" && !d.FormatKnown() {
			return fmt.Errorf("%s: sprout cannot make a %q file system for the new partition of %s (it makes %s)",
				d.Where("Format"), d.Format, d.File, formatList())
		}
		for _, sv := range d.Subvolumes {
			if slices.Contains(sv.Flags, "ro") {
				return fmt.Errorf("%s: Subvolumes=%s:ro asks to make a subvolume of the new file system read-only; sprout does not (a new, empty file system has no subvolume but the top level; systemd-repart fails on any other)",
					d.Where("Subvolumes"), sv.Path)
			}
		}
		if d.DefaultSubvolume != "" && d.DefaultSubvolume != "/" {
			return fmt.Errorf("%s: DefaultSubvolume=%s names a subvolume a new, empty file system does not have (its directory would come from MakeDirectories= or CopyFiles=, which sprout does not run at boot; systemd-repart fails on it too)",
				d.Where("DefaultSubvolume"), d.DefaultSubvolume)
		}
	}
	return nil
}

func formatList() string {
	s := ""
	for i, f := range repartd.Formats() {
		if i > 0 {
			s += ", "
		}
		s += f
	}
	return s + " and Format=empty"
}
