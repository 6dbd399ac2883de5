package plan

// SupplementFor= (systemd 257), as 262 plans it (observed):
//   - a supplement whose partition exists is used as written;
//   - otherwise it is merged into its target (repartd.Merged: the target
//     takes the supplement's weights and the stricter sizes) and not
//     created;
//   - when the partitions do not fit, the first merged pair (supplements
//     in list order) is undone, and the supplement used as written,
//     before any partition is dropped for its Priority=. A target that
//     exists and cannot grow to the merged minimum (no free space after
//     it) does not fit.
//
// A suppressed supplement is a dropped member: it takes no space and no
// entry, but counts, like any dropped definition, when labels are made
// unique and UUIDs derived.

import (
	"fmt"

	"github.com/sprout-initrd/sprout/pkg/repartd"
)

// supplementPair is a supplement merged into its target.
type supplementPair struct {
	supplement, target *member
	original           *repartd.Definition // the target's own definition
	merged             repartd.Definition
	undone             bool
}

// mergeSupplements merges each supplement that has no partition yet into
// its target and returns the pairs, in the supplements' list order. A
// supplement whose target the selection left out is refused, as 262
// refuses it ("Couldn't find target partition").
func (l *layout) mergeSupplements(defs []repartd.Definition) ([]*supplementPair, error) {
	var pairs []*supplementPair
	for _, s := range l.members {
		if s.def == nil || s.def.SupplementFor == "" {
			continue
		}
		var target *member
		for _, t := range l.members {
			if t != s && t.def != nil && t.def.Name() == s.def.SupplementFor {
				target = t
			}
		}
		if target == nil {
			return nil, fmt.Errorf("%s: SupplementFor=%s: that definition is left out by --include-partitions=/--exclude-partitions=",
				s.def.Where("SupplementFor"), s.def.SupplementFor)
		}
		if s.exists {
			continue // its partition exists: used as written
		}
		p := &supplementPair{supplement: s, target: target, original: target.def, merged: repartd.Merged(target.def, s.def)}
		target.def = &p.merged
		s.dropped = true
		pairs = append(pairs, p)
	}
	return pairs, nil
}

// unmergeFirst undoes the first pair still merged and says so; "" when
// none is left.
func unmergeFirst(pairs []*supplementPair) string {
	for _, p := range pairs {
		if !p.undone {
			return p.unmerge()
		}
	}
	return ""
}

func (p *supplementPair) unmerge() string {
	p.undone = true
	p.target.def = p.original
	p.supplement.dropped = false
	return fmt.Sprintf("Couldn't allocate partitions with %s merged into %s, using supplement verbatim.", p.supplement.def.Path, p.original.Path)
}

// mergedTargetsFit reports whether every existing target of a merged pair
// can reach the merged minimum: within its own size, or the free space
// right after it (262 checks this for every existing partition; the
// other cases are left to the version rules of 252).
func (l *layout) mergedTargetsFit(pairs []*supplementPair) bool {
	for _, p := range pairs {
		t := p.target
		if !p.undone && t.exists && t.paddingArea == nil && l.minSizeWithPadding(t) > t.currentSize {
			return false
		}
	}
	return true
}
