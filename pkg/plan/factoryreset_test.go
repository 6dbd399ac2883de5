package plan

import (
	"reflect"
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/gpt"
	"github.com/sprout-initrd/sprout/pkg/repartd"
)

// resetDefs: root keeps its data; home (ext4) and var are reset.
func resetDefs(t *testing.T) []repartd.Definition {
	root := def(t, "10-root", "root", "SizeMin=67108864", "SizeMax=67108864", "Format=ext4")
	home := def(t, "20-home", "home", "SizeMin=33554432", "SizeMax=50331648", "Format=ext4")
	home.FactoryReset = true
	v := def(t, "30-var", "var", "SizeMin=16777216")
	v.FactoryReset = true
	return []repartd.Definition{root, home, v}
}

// The disk 252 made from resetDefs on 300 MiB (differential scenario
// factory-reset): root 2048+131072, home 133120+98304, var 231424+382936.
func resetDisk(t *testing.T) Snapshot {
	tb := table(t, 300<<20, 2048, "1:root:2048:131072", "2:home:133120:98304", "3:var:231424:382936")
	for i, name := range []string{"root-x86-64", "home", "var"} {
		tb.Entries[i].Name = name
	}
	return existing(tb, 300<<20)
}

func stepsOf[T Step](p *Plan) []T {
	var out []T
	for _, s := range p.Steps {
		if x, ok := s.(T); ok {
			out = append(out, x)
		}
	}
	return out
}

func TestFactoryResetPlan(t *testing.T) {
	defs, snap := resetDefs(t), resetDisk(t)
	p := mustPlan(t, defs, snap, Options{Compat: compat.Oldest, Seed: seedB, FactoryReset: true})

	resets := stepsOf[FactoryReset](p)
	if len(resets) != 1 {
		t.Fatalf("want one FactoryReset step, got %d:\n%s", len(resets), describeSteps(p))
	}
	r := resets[0]
	if _, ok := p.Steps[0].(FactoryReset); !ok {
		t.Errorf("the reset is not the first step:\n%s", describeSteps(p))
	}
	var erased []int
	for _, e := range r.Erase {
		erased = append(erased, e.Index)
	}
	if !reflect.DeepEqual(erased, []int{2, 3}) {
		t.Errorf("erased %v, want [2 3]", erased)
	}
	// The dry run names every erased partition.
	d := r.Describe()
	for _, want := range []string{`partition 2 "home" (20-home.conf`, `partition 3 "var" (30-var.conf`, "ERASE"} {
		if !strings.Contains(d, want) {
			t.Errorf("Describe() = %q, missing %q", d, want)
		}
	}
	// The table written first is the old one without them, entry for
	// entry (root untouched).
	if len(r.Table.Entries) != 1 || !reflect.DeepEqual(r.Table.Entries[0], snap.Table.Entries[0]) {
		t.Errorf("reset table entries %+v, want only the old root %+v", r.Table.Entries, snap.Table.Entries[0])
	}
	// Then an ordinary first run: wipe and format before the entries exist.
	var order []string
	for _, s := range p.Steps {
		switch s := s.(type) {
		case FactoryReset:
			order = append(order, "reset")
		case WipeRange:
			order = append(order, "wipe"+itoa(s.Index))
		case FormatPartition:
			order = append(order, "format"+itoa(s.Index))
		case AddEntry:
			order = append(order, "add"+itoa(s.Entry.Index))
		case WriteTable:
			order = append(order, "write")
		case TellKernel:
			order = append(order, "kernel")
		case WaitForUdev:
			order = append(order, "udev")
		default:
			order = append(order, "?")
		}
	}
	if got := strings.Join(order, " "); got != "reset wipe2 wipe3 format2 add2 add3 write kernel udev" {
		t.Errorf("step order %q", got)
	}
	// Recreated where 252 recreates them (same places, checked against the
	// binary by the differential scenario factory-reset).
	if got := layoutOf(p); got != "10-root@1:2048+131072 20-home@2:133120+98304 30-var@3:231424+382936" {
		t.Errorf("layout %s", got)
	}
	for _, row := range p.Partitions[1:] {
		if row.Activity != Create || row.OldSize != 0 {
			t.Errorf("%s: activity %s, old size %d; want create from nothing", row.File, row.Activity, row.OldSize)
		}
	}
	if p.Partitions[0].Activity != Unchanged || !reflect.DeepEqual(p.New.Entries[0], snap.Table.Entries[0]) {
		t.Errorf("root changed: %+v → %+v", snap.Table.Entries[0], p.New.Entries[0])
	}
	if p.Old != snap.Table {
		t.Errorf("Plan.Old is not the table as found")
	}
}

func itoa(n int) string { return string(rune('0' + n)) }

// A crash after the reset's table write leaves the reset table; the next
// run, asked again or not, must finish with the same table as the
// uninterrupted run.
func TestFactoryResetConvergesAfterResetWrite(t *testing.T) {
	defs, snap := resetDefs(t), resetDisk(t)
	full := mustPlan(t, defs, snap, Options{Compat: compat.Oldest, Seed: seedB, FactoryReset: true})
	reset := stepsOf[FactoryReset](full)[0].Table
	after := existing(reset, snap.Size)
	for _, again := range []bool{true, false} {
		p := mustPlan(t, defs, after, Options{Compat: compat.Oldest, Seed: seedB, FactoryReset: again})
		if len(stepsOf[FactoryReset](p)) != 0 {
			t.Errorf("again=%v: the re-run erases again:\n%s", again, describeSteps(p))
		}
		if !reflect.DeepEqual(p.New, full.New) {
			t.Errorf("again=%v: re-run table differs:\n%+v\nwant\n%+v", again, p.New.Entries, full.New.Entries)
		}
		if !reflect.DeepEqual(p.Partitions, full.Partitions) {
			t.Errorf("again=%v: re-run rows differ", again)
		}
	}
	// Once complete, a further run with the request still present resets
	// again (as 252 does for --factory-reset=yes); without it, nothing.
	done := existing(full.New, snap.Size)
	if p := mustPlan(t, defs, done, Options{Compat: compat.Oldest, Seed: seedB}); p.Changed() {
		t.Errorf("a run without the request after the reset changes:\n%s", describeSteps(p))
	}
}

func TestFactoryResetNotApplicable(t *testing.T) {
	defs := resetDefs(t)
	// Nothing to erase: a definition with FactoryReset=yes whose
	// partition does not exist yet, and a foreign partition of another
	// type, are left alone; the plan is the ordinary one.
	tb := table(t, 300<<20, 2048, "1:root:2048:131072", "5:srv:133120:2048")
	snap := existing(tb, 300<<20)
	with := mustPlan(t, defs, snap, Options{Compat: compat.Oldest, Seed: seedB, FactoryReset: true})
	without := mustPlan(t, defs, snap, Options{Compat: compat.Oldest, Seed: seedB})
	if !reflect.DeepEqual(with, without) {
		t.Errorf("reset with nothing to erase differs from a normal run:\n%s\nvs\n%s", describeSteps(with), describeSteps(without))
	}
	// From scratch, a reset is ignored (252 too).
	scratch := mustPlan(t, defs, resetDisk(t), Options{Compat: compat.Oldest, Seed: seedB, FactoryReset: true, Empty: EmptyForce})
	if len(stepsOf[FactoryReset](scratch)) != 0 {
		t.Errorf("--empty=force with a reset erases:\n%s", describeSteps(scratch))
	}
	// Without the request nothing is erased even if it could be.
	p := mustPlan(t, defs, resetDisk(t), Options{Compat: compat.Oldest, Seed: seedB})
	if p.Changed() {
		t.Errorf("no request, yet changes:\n%s", describeSteps(p))
	}
}

// Matching decides what is erased: with two home definitions and one home
// partition, the partition belongs to the first file, so only that file's
// FactoryReset= counts.
func TestFactoryResetFollowsMatching(t *testing.T) {
	a := def(t, "10-a", "home", "SizeMin=16777216", "SizeMax=16777216")
	b := def(t, "20-b", "home", "SizeMin=16777216", "SizeMax=16777216")
	b.FactoryReset = true
	tb := table(t, 100<<20, 2048, "1:home:2048:32768")
	if got := ResetTargets([]repartd.Definition{a, b}, tb, 512); len(got) != 0 {
		t.Errorf("erases %+v, but the partition belongs to 10-a.conf (no FactoryReset)", got)
	}
	a.FactoryReset, b.FactoryReset = true, false
	got := ResetTargets([]repartd.Definition{a, b}, tb, 512)
	if len(got) != 1 || got[0].Index != 1 || got[0].File != "10-a.conf" || got[0].Offset != 2048*512 || got[0].Size != 32768*512 {
		t.Errorf("targets %+v, want partition 1 of 10-a.conf", got)
	}
}

// On a grown disk the reset's table write also moves the backup GPT; the
// relocation is then not written again on its own.
func TestFactoryResetGrownDisk(t *testing.T) {
	defs := resetDefs(t)
	snap := resetDisk(t)
	snap.Size = 600 << 20
	p := mustPlan(t, defs, snap, Options{Compat: compat.Oldest, Seed: seedB, FactoryReset: true})
	r := stepsOf[FactoryReset](p)
	if len(r) != 1 {
		t.Fatalf("no reset step:\n%s", describeSteps(p))
	}
	if r[0].Table.Grown(int64(snap.Size)) {
		t.Errorf("the reset table keeps the backup GPT in the middle (LBA %d)", r[0].Table.BackupLBA)
	}
	for _, rel := range stepsOf[RelocateBackup](p) {
		if rel.Table != nil {
			t.Errorf("relocation written on its own besides the reset table:\n%s", describeSteps(p))
		}
	}
	if p.Steps[0].(RelocateBackup).NewBackupLBA != uint64(snap.Size/512-1) {
		t.Errorf("relocation note missing or wrong:\n%s", describeSteps(p))
	}
	// Re-run after a crash right after the reset write converges.
	again := mustPlan(t, defs, existing(r[0].Table, snap.Size), Options{Compat: compat.Oldest, Seed: seedB, FactoryReset: true})
	if !reflect.DeepEqual(again.New, p.New) {
		t.Errorf("re-run after the reset write differs")
	}
}

// A damaged backup is repaired by the reset's table write; the re-planned
// rest does not claim to repair it again.
func TestFactoryResetRepairsDamage(t *testing.T) {
	snap := resetDisk(t)
	snap.Table.BackupInvalid = "bad CRC"
	p := mustPlan(t, resetDefs(t), snap, Options{Compat: compat.Oldest, Seed: seedB, FactoryReset: true})
	var repairs int
	for _, s := range p.Steps {
		if _, ok := s.(RepairTable); ok {
			repairs++
		}
	}
	r := stepsOf[FactoryReset](p)[0]
	if repairs != 1 || r.Table.BackupInvalid != "" {
		t.Errorf("repairs %d, reset table damage %q:\n%s", repairs, r.Table.BackupInvalid, describeSteps(p))
	}
}

func TestCanFactoryReset(t *testing.T) {
	defs := resetDefs(t)
	for _, c := range []struct {
		name  string
		snap  Snapshot
		mode  EmptyMode
		want  bool
		label bool // refused with a LabelError
	}{
		{"resettable partitions", resetDisk(t), "", true, false},
		{"only root", existing(table(t, 300<<20, 2048, "1:root:2048:131072"), 300<<20), "", false, false},
		{"blank disk, refuse", blank(300<<20, 512), EmptyRefuse, false, true},
		{"blank disk, allow (from scratch)", blank(300<<20, 512), EmptyAllow, false, false},
		{"force (from scratch)", resetDisk(t), EmptyForce, false, false},
	} {
		got, err := CanFactoryReset(defs, c.snap, Options{Compat: compat.Oldest, Empty: c.mode})
		_, label := err.(*LabelError)
		if err != nil && !label {
			t.Errorf("%s: %v", c.name, err)
		}
		if got != c.want || label != c.label {
			t.Errorf("%s: got %v (label refusal %v), want %v (label refusal %v)", c.name, got, label, c.want, c.label)
		}
	}
}

// The reset table is the old table minus the erased entries and nothing
// else, so every partition without FactoryReset=yes keeps its entry byte
// for byte.
func TestWithoutEntries(t *testing.T) {
	tb := resetDisk(t).Table
	out := withoutEntries(tb, []ErasedPartition{{Index: 2}})
	if len(tb.Entries) != 3 {
		t.Fatalf("the input table was changed")
	}
	want := []gpt.Entry{tb.Entries[0], tb.Entries[2]}
	if !reflect.DeepEqual(out.Entries, want) || out.DiskGUID != tb.DiskGUID || out.BackupLBA != tb.BackupLBA {
		t.Errorf("got %+v", out)
	}
}
