package differential

import (
	"reflect"
	"testing"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// The randomized-UUID notices excuse exactly the entries they stand for.
func TestRandomizedEntries(t *testing.T) {
	table := func(uuids ...string) *harness.Table {
		tb := &harness.Table{}
		for i, u := range uuids {
			tb.Partitions = append(tb.Partitions, harness.Partition{Entry: i + 1, UUID: u})
		}
		return tb
	}
	const numbered = "Partition UUID calculated from seed for partition 1 already used, reverting to randomized UUID.\n"
	const unnumbered = "Partition UUID calculated from seed for partition 18446744073709551615 already used, reverting to randomized UUID.\n"
	before := table("A", "B")
	for _, c := range []struct {
		name      string
		stderr    string
		want, got *harness.Table
		excused   map[int]bool
	}{
		{"no notice", "", table("A", "B", "C"), table("A", "B", "X"), nil},
		{"252: numbered", numbered, table("A", "B", "C"), table("A", "X", "C"), map[int]bool{2: true}},
		{"257: one new entry differs", unnumbered, table("A", "B", "C"), table("A", "B", "X"), map[int]bool{3: true}},
		{"257: one notice excuses one of two differing new entries", unnumbered, table("A", "B", "C", "D"), table("A", "B", "X", "Y"), map[int]bool{3: true}},
		{"257: an old entry is never excused", unnumbered, table("A", "B"), table("A", "X"), nil},
		{"257: equal UUIDs need no excuse", unnumbered, table("A", "B", "C"), table("A", "B", "C"), nil},
	} {
		got := randomizedEntries(c.stderr, before, c.want, c.got)
		if len(got) == 0 && len(c.excused) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, c.excused) {
			t.Errorf("%s: excused %v, want %v", c.name, got, c.excused)
		}
	}
}
