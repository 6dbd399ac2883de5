package blockdev

import (
	"reflect"
	"testing"
)

// TestDiffKernel: a partition that matches is left alone; one that moved
// is deleted and added again; one not in the table is deleted; same-start
// partitions are shrunk or grown; new ones are added.
func TestDiffKernel(t *testing.T) {
	current := []KernelPartition{
		{Number: 1, Start: 1 * mib, Size: 8 * mib},  // matches
		{Number: 2, Start: 9 * mib, Size: 8 * mib},  // grows
		{Number: 3, Start: 17 * mib, Size: 8 * mib}, // moves
		{Number: 4, Start: 25 * mib, Size: 8 * mib}, // shrinks
		{Number: 5, Start: 40 * mib, Size: 8 * mib}, // not in the table
	}
	want := []WantPartition{
		{Number: 6, Start: 60 * mib, Size: 1 * mib}, // new
		{Number: 4, Start: 25 * mib, Size: 4 * mib},
		{Number: 3, Start: 18 * mib, Size: 7 * mib},
		{Number: 2, Start: 9 * mib, Size: 9 * mib},
		{Number: 1, Start: 1 * mib, Size: 8 * mib},
	}
	got := DiffKernel(current, want)
	wantChanges := KernelChanges{Delete: []int{3, 5}, Shrink: []int{4}, Grow: []int{2}, Add: []int{3, 6}}
	if !reflect.DeepEqual(got, wantChanges) {
		t.Errorf("DiffKernel = %+v, want %+v", got, wantChanges)
	}
	if got := DiffKernel(nil, nil); !reflect.DeepEqual(got, KernelChanges{}) {
		t.Errorf("DiffKernel of nothing = %+v, want no changes", got)
	}
}
