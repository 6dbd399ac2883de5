package plan

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sprout-initrd/sprout/pkg/repartd"
)

// stepKinds renders the plan's steps as their type names, with the
// DiscardRanges' index, offset and size.
func stepKinds(p *Plan) string {
	var out []string
	for _, s := range p.Steps {
		switch s := s.(type) {
		case DiscardRange:
			out = append(out, fmt.Sprintf("DiscardRange(%d@%d+%d,%s)", s.Index, s.Offset, s.Size, s.Budget))
		default:
			out = append(out, strings.TrimPrefix(fmt.Sprintf("%T", s), "plan."))
		}
	}
	return strings.Join(out, " ")
}

// The discard is planned as data: after each new partition's wipe, the
// range between the zeroed ends, with the run's budget; the dry run
// prints it.
func TestDiscardIsPlannedAfterEachWipeWithTheBudget(t *testing.T) {
	defs := []repartd.Definition{def(t, "home", "home", "Weight=2000"), def(t, "var", "var", "Weight=1000")}
	snap := existing(table(t, 2*gib, 2048, "1:esp:2048:131072"), 2*gib)
	on := DiscardPolicy{On: true, Budget: 10 * time.Second}
	p := mustPlan(t, defs, snap, Options{Seed: seedA, Discard: on})
	var wipes, discards []string
	for _, s := range p.Steps {
		switch s := s.(type) {
		case WipeRange:
			wipes = append(wipes, fmt.Sprintf("%d@%d+%d", s.Index, s.Offset+WipeSpan, s.Size-2*WipeSpan))
		case DiscardRange:
			discards = append(discards, fmt.Sprintf("%d@%d+%d", s.Index, s.Offset, s.Size))
			if s.Budget != 10*time.Second || s.Label == "" {
				t.Errorf("%+v: want the run's budget and the partition's label", s)
			}
			if d := s.Describe(); !strings.Contains(d, "discard budget of 10s") {
				t.Errorf("the dry run does not say the budget: %s", d)
			}
		}
	}
	if len(wipes) != 2 || strings.Join(wipes, " ") != strings.Join(discards, " ") {
		t.Errorf("wipes %v, discards %v: want one discard of the middle of each wiped range", wipes, discards)
	}
	if k := stepKinds(p); !strings.Contains(k, "WipeRange DiscardRange") {
		t.Errorf("steps %s: want each DiscardRange right after its WipeRange", k)
	}

	// --discard=no: no discard at all; same layout and table.
	off := mustPlan(t, defs, snap, Options{Seed: seedA})
	if strings.Contains(stepKinds(off), "DiscardRange") || layoutOf(off) != layoutOf(p) {
		t.Errorf("--discard=no: steps %s", stepKinds(off))
	}
	// A device that cannot discard: none, and the plan says so.
	on.Limits = &DiscardLimits{MaxBytes: 0, Granularity: 0}
	none := mustPlan(t, defs, snap, Options{Seed: seedA, Discard: on})
	if strings.Contains(stepKinds(none), "DiscardRange") || !strings.Contains(strings.Join(none.Notices, " "), "cannot discard") {
		t.Errorf("device without discard: steps %s, notices %q", stepKinds(none), none.Notices)
	}
	// A no-op plans no discard (and a no-op boot reads no limits).
	if again := mustPlan(t, defs, existing(p.New, 2*gib), Options{Seed: seedA, Discard: on}); again.Changed() || again.Discards() {
		t.Errorf("second run: %s", stepKinds(again))
	}
}

// A table made from scratch discards the whole disk first, as before, and
// the new partitions' ranges, inside it, not again.
func TestDiscardOfANewTableCoversTheDiskFirst(t *testing.T) {
	defs := []repartd.Definition{def(t, "root", "root-x86-64")}
	p := mustPlan(t, defs, blank(gib, 512), Options{Seed: seedA, Empty: EmptyForce,
		Discard: DiscardPolicy{On: true, Budget: time.Second}})
	if k := stepKinds(p); !strings.HasPrefix(k, fmt.Sprintf("DiscardRange(0@0+%d,1s) CreateTable", gib)) ||
		strings.Count(k, "DiscardRange") != 1 {
		t.Errorf("steps %s: want the whole disk discarded first, and only that", k)
	}
}
