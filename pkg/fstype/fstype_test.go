package fstype

import (
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/sprout-initrd/sprout/pkg/compat"
)

// testRequest has a label longer than every field but btrfs's, with
// characters FAT does not take, so each format's label rule shows.
var testRequest = Request{Label: "héllo wörld and a long label", UUID: uuid.MustParse("262afe25-c985-4002-86e6-146a18a7febd")}

func request(format string) Request {
	r := testRequest
	r.Format = format
	return r
}

// TestDeclarations: every declaration is complete and consistent, so a
// new format cannot be half declared.
func TestDeclarations(t *testing.T) {
	if got, want := Names(), []string{"ext2", "ext3", "ext4", "vfat", "swap", "xfs", "btrfs"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v (the order messages name them in)", got, want)
	}
	for _, f := range formats {
		if got, ok := Lookup(f.Name); !ok || got.Name != f.Name {
			t.Errorf("Lookup(%q) = %q, %v", f.Name, got.Name, ok)
		}
		if err := f.PlanMinimum.Check(); err != nil {
			t.Errorf("%s: PlanMinimum: %v", f.Name, err)
		}
		if err := f.ToolMinimum.Check(); err != nil {
			t.Errorf("%s: ToolMinimum: %v", f.Name, err)
		}
		if f.Label == nil {
			t.Errorf("%s: no label rule", f.Name)
		}
		// Exactly one way to make it: a program's command line, or a
		// header sprout writes.
		if (f.Args != nil) == (f.Header != nil) || (f.Program != "") != (f.Args != nil) {
			t.Errorf("%s: program %q, Args %v, Header %v: want a program with Args, or Header alone", f.Name, f.Program, f.Args != nil, f.Header != nil)
		}
		if f.InPlaceArgs != nil && f.Args == nil {
			t.Errorf("%s: InPlaceArgs without Args", f.Name)
		}
		if f.Program != "" {
			if f.Package.Debian == "" || f.Package.Fedora == "" || f.Package.Arch == "" || f.Package.Nixpkgs == "" {
				t.Errorf("%s: %s's package is not named for every distribution: %+v", f.Name, f.Program, f.Package)
			}
			if n := f.Needs(); len(n.Programs) == 0 || n.Programs[0].Name != f.Program {
				t.Errorf("%s: Needs() does not start with %s: %+v", f.Name, f.Program, n.Programs)
			}
		}
		if f.Program != "" && len(f.Needs().Modules) == 0 {
			t.Errorf("%s: no kernel module to mount it", f.Name)
		}
		identified := slices.Contains(identifyOrder, f)
		if identified != (f.Identify != nil) {
			t.Errorf("%s: Identify set %v, in identifyOrder %v", f.Name, f.Identify != nil, identified)
		}
	}
	for _, f := range identifyOrder {
		if !slices.Contains(formats, f) {
			t.Errorf("%s is identified but not declared in formats", f.Name)
		}
	}
	if _, ok := Lookup("ntfs"); ok {
		t.Error("ntfs is declared")
	}
}

// TestMinimumsOf252 pins 252's minimums: the planner's shape the layout
// (the differential tier compares it with 252's), the tools' are what
// sprout refuses before the first write.
func TestMinimumsOf252(t *testing.T) {
	for _, c := range []struct {
		format string
		plan   uint64
		tool   int64 // with 4096-byte pages
	}{
		{"ext2", 0, 1 << 20}, {"ext3", 0, 1 << 20}, {"ext4", 1 << 20, 1 << 20},
		{"vfat", 0, 1 << 20}, {"swap", 0, 40960},
		{"xfs", 14 << 20, 300 << 20}, {"btrfs", 256 << 20, 0},
	} {
		f, _ := Lookup(c.format)
		for _, v := range []compat.Version{252, 253} {
			if got := f.PlanMinimum.At(v); got != c.plan {
				t.Errorf("%s: planner minimum under %d = %d, want %d", c.format, v, got, c.plan)
			}
			if got := f.MinSize(v, 4096); got != c.tool {
				t.Errorf("%s: tool minimum under %d = %d, want %d", c.format, v, got, c.tool)
			}
		}
	}
}

// The planner minimums that changed: xfs in 254 (NEWS 254), ext4 in 257.
func TestMinimumsByVersion(t *testing.T) {
	for _, c := range []struct {
		format string
		v      compat.Version
		plan   uint64
	}{
		{"xfs", 253, 14 << 20}, {"xfs", 254, 300 << 20}, {"xfs", 262, 300 << 20},
		{"ext4", 256, 1 << 20}, {"ext4", 257, 32 << 20}, {"ext4", 0, 32 << 20},
		{"ext2", 262, 0}, {"vfat", 262, 0}, {"btrfs", 262, 256 << 20},
	} {
		f, _ := Lookup(c.format)
		if err := f.PlanMinimum.Check(); err != nil {
			t.Errorf("%s: %v", c.format, err)
		}
		if got := f.PlanMinimum.At(c.v); got != c.plan {
			t.Errorf("%s: planner minimum under %d = %d, want %d", c.format, c.v, got, c.plan)
		}
	}
}
