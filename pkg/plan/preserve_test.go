package plan

import (
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/gpt"
	"github.com/sprout-initrd/sprout/pkg/repartd"
)

// checkPreserved is the last line of defence against a plan that would lose
// data. The allocator never produces such a plan (existing partitions only
// keep their place or grow), so Make cannot be driven into the condition
// through its inputs; these tests craft the new table directly.
func TestCheckPreservedRefusesMoveShrinkRetypeAndRemove(t *testing.T) {
	old := table(t, 4*gib, 2048, "1:esp:2048:409600", "2:root:411648:2000000")
	cases := []struct {
		name string
		edit func(e []gpt.Entry) []gpt.Entry
		want string // "" means accepted
	}{
		{"unchanged", func(e []gpt.Entry) []gpt.Entry { return e }, ""},
		{"grown", func(e []gpt.Entry) []gpt.Entry { e[1].LastLBA += 1000; return e }, ""},
		{"new partition added", func(e []gpt.Entry) []gpt.Entry {
			return append(e, gpt.Entry{Index: 3, Type: typ(t, "home"), FirstLBA: 2500000, LastLBA: 2600000})
		}, ""},
		{"moved", func(e []gpt.Entry) []gpt.Entry { e[1].FirstLBA += 8; e[1].LastLBA += 8; return e }, "move, shrink or retype partition 2"},
		{"start moved into the gap", func(e []gpt.Entry) []gpt.Entry { e[1].FirstLBA -= 8; return e }, "move, shrink or retype partition 2"},
		{"shrunk", func(e []gpt.Entry) []gpt.Entry { e[0].LastLBA--; return e }, "move, shrink or retype partition 1"},
		{"retyped", func(e []gpt.Entry) []gpt.Entry { e[1].Type = typ(t, "home"); return e }, "move, shrink or retype partition 2"},
		{"removed", func(e []gpt.Entry) []gpt.Entry { return e[:1] }, "remove partition 2"},
		{"renumbered", func(e []gpt.Entry) []gpt.Entry { e[1].Index = 5; return e }, "remove partition 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			neu := old.Clone()
			neu.Entries = c.edit(neu.Entries)
			err := checkPreserved(old, neu)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && err == nil:
				t.Errorf("accepted, want a refusal mentioning %q", c.want)
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Errorf("error %q does not mention %q", err, c.want)
			}
		})
	}
	if err := checkPreserved(nil, old); err != nil {
		t.Errorf("a table made from scratch has nothing to preserve, got %v", err)
	}
}

// Make runs the assertion on every plan: a plan that grows the existing
// partitions and adds new ones passes it, and every existing partition of
// the result keeps its start.
func TestMakeKeepsExistingPartitionsInPlace(t *testing.T) {
	old := table(t, 2*gib, 2048, "1:esp:2048:409600", "2:root:411648:2000000")
	snap := existing(old, 8*gib)
	defs := []repartd.Definition{def(t, "root", "root"), def(t, "home", "home", "Weight=2000")}
	p := mustPlan(t, defs, snap, Options{Compat: compat.Oldest, Seed: seedA})
	grows, adds := 0, 0
	for _, s := range p.Steps {
		switch s.(type) {
		case GrowEntry:
			grows++
		case AddEntry:
			adds++
		}
	}
	if grows != 1 || adds != 1 {
		t.Fatalf("want root grown and home added, got steps %v", p.Steps)
	}
	if err := checkPreserved(p.Old, p.New); err != nil {
		t.Fatal(err)
	}
	for _, o := range old.Entries {
		for _, n := range p.New.Entries {
			if n.Index == o.Index && (n.FirstLBA != o.FirstLBA || n.LastLBA < o.LastLBA) {
				t.Errorf("partition %d: %d–%d → %d–%d", o.Index, o.FirstLBA, o.LastLBA, n.FirstLBA, n.LastLBA)
			}
		}
	}
}
