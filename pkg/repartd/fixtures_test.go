package repartd

import (
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/google/uuid"

	"github.com/sprout-initrd/sprout/pkg/parttype"
	"github.com/sprout-initrd/sprout/tests/harness"
)

const applianceDir = "testdata/appliance"

func TestLoadApplianceFixture(t *testing.T) {
	defs, err := Load(Options{Dirs: []string{applianceDir}})
	if err != nil {
		t.Fatal(err)
	}
	root, _ := parttype.Lookup("root")
	at := func(name string, line int) string {
		return filepath.Join(applianceDir, name) + ":" + strconv.Itoa(line)
	}
	want := []Definition{
		{
			File: "00-esp.conf", Path: filepath.Join(applianceDir, "00-esp.conf"),
			Type: uuid.MustParse("c12a7328-f81f-11d2-ba4b-00a0c93ec93b"), Weight: 1000,
			SizeMin: 64 << 20, SizeMax: 64 << 20, PaddingMin: Unset, PaddingMax: Unset, Format: "vfat",
			NoAuto: TriUnset, ReadOnly: TriUnset, GrowFileSystem: TriUnset,
			Lines: map[string]string{"Type": at("00-esp.conf", 3), "Format": at("00-esp.conf", 4),
				"SizeMinBytes": at("00-esp.conf", 5), "SizeMaxBytes": at("00-esp.conf", 6)},
		},
		{
			File: "10-store.conf", Path: filepath.Join(applianceDir, "10-store.conf"),
			Type: root, Label: ptr("store"), Weight: 1000,
			SizeMin: 512 << 20, SizeMax: 512 << 20, PaddingMin: Unset, PaddingMax: Unset,
			NoAuto: TriUnset, ReadOnly: TriYes, GrowFileSystem: TriUnset,
			Lines: map[string]string{"Type": at("10-store.conf", 3), "Label": at("10-store.conf", 4),
				"ReadOnly": at("10-store.conf", 5), "SizeMinBytes": at("10-store.conf", 6), "SizeMaxBytes": at("10-store.conf", 7)},
		},
		{
			File: "20-home.conf", Path: filepath.Join(applianceDir, "20-home.conf"),
			Type: homeGUID, Weight: 2000, Format: "ext4",
			SizeMin: Unset, SizeMax: Unset, PaddingMin: Unset, PaddingMax: Unset,
			NoAuto: TriUnset, ReadOnly: TriUnset, GrowFileSystem: TriUnset,
			Lines: map[string]string{"Type": at("20-home.conf", 3), "Format": at("20-home.conf", 4), "Weight": at("20-home.conf", 5)},
		},
		{
			File: "30-var.conf", Path: filepath.Join(applianceDir, "30-var.conf"),
			DropIns: []string{filepath.Join(applianceDir, "30-var.conf.d/10-minimum.conf")},
			Type:    uuid.MustParse("4d21b016-b534-45c2-a9fb-5c16e091fd2d"), Weight: 1000, Format: "ext4",
			SizeMin: 1 << 30, SizeMax: Unset, PaddingMin: Unset, PaddingMax: Unset,
			NoAuto: TriUnset, ReadOnly: TriUnset, GrowFileSystem: TriUnset,
			Lines: map[string]string{"Type": at("30-var.conf", 3), "Format": at("30-var.conf", 4), "Weight": at("30-var.conf", 5),
				"SizeMinBytes": filepath.Join(applianceDir, "30-var.conf.d/10-minimum.conf") + ":3"},
		},
	}
	if !reflect.DeepEqual(defs, want) {
		for i := range defs {
			if i < len(want) && !reflect.DeepEqual(defs[i], want[i]) {
				t.Errorf("definition %d:\ngot  %+v\nwant %+v", i, defs[i], want[i])
			}
		}
		if len(defs) != len(want) {
			t.Errorf("got %d definitions, want %d", len(defs), len(want))
		}
	}
}

// The fixture means the same to systemd-repart: same files, types, labels
// and, on an 8 GiB disk, the sizes our minimums and maximums imply.
func TestOracleApplianceFixture(t *testing.T) {
	harness.RequireHostOracle(t)
	defs, err := Load(Options{Dirs: []string{applianceDir}})
	if err != nil {
		t.Fatal(err)
	}
	r := runOracle(t, "8G", true, []string{applianceDir})
	if r.err != nil {
		t.Fatalf("repart: %v\n%s", r.err, r.stderr)
	}
	if len(r.parts) != len(defs) {
		t.Fatalf("repart has %d partitions, we %d definitions", len(r.parts), len(defs))
	}
	for i, p := range r.parts {
		d := defs[i]
		label := parttype.DefaultLabel(d.Type)
		if d.Label != nil {
			label = *d.Label
		}
		if p.File != d.File || p.Type != parttype.DisplayName(d.Type) || p.Label != label {
			t.Errorf("repart %s %s %s; we %s %s %s", p.File, p.Type, p.Label, d.File, parttype.DisplayName(d.Type), label)
		}
		if d.SizeMax != Unset && p.RawSize != d.SizeMax {
			t.Errorf("%s: repart size %d, SizeMax %d", d.File, p.RawSize, d.SizeMax)
		}
		if d.SizeMin != Unset && p.RawSize < d.SizeMin {
			t.Errorf("%s: repart size %d below SizeMin %d", d.File, p.RawSize, d.SizeMin)
		}
	}
}
