package plan_test

// Benchmarks for the planner, run by `make bench` (docs/benchmarks.md).
// They use the seed scenario of testdata/differential/seed-article: an
// image made of an ESP and a read-only store (base.d), dd'ed onto a bigger
// disk, on which home and var (defs) are created.
//
// The planner must cost the same on every disk size: sizes are plain
// numbers to it. BenchmarkFirstRun and BenchmarkNoop check that from 1 GiB
// to 64 TiB; BenchmarkDefinitions shows the cost per definition.

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/plan"
	"github.com/sprout-initrd/sprout/pkg/repartd"
)

const (
	benchMiB = uint64(1) << 20
	benchGiB = uint64(1) << 30
	benchTiB = uint64(1) << 40
	// benchBaseSize is the size of the seed image before it is grown.
	benchBaseSize = 545 * benchMiB
)

var (
	benchSeed      = uuid.MustParse("0123456789abcdef0123456789abcdef")
	benchSeedDir   = filepath.Join("..", "..", "testdata", "differential", "seed-article")
	benchDiskSizes = []struct {
		name  string
		bytes uint64
	}{
		{"1GiB", benchGiB}, {"10GiB", 10 * benchGiB}, {"1TiB", benchTiB}, {"16TiB", 16 * benchTiB}, {"64TiB", 64 * benchTiB},
	}
)

func loadDefs(b *testing.B, dir string) []repartd.Definition {
	b.Helper()
	defs, err := repartd.Load(repartd.Options{Dirs: []string{dir}})
	if err != nil {
		b.Fatal(err)
	}
	if len(defs) == 0 {
		b.Fatalf("no definitions in %s", dir)
	}
	return defs
}

func mustPlanB(b *testing.B, defs []repartd.Definition, snap plan.Snapshot, opts plan.Options) *plan.Plan {
	b.Helper()
	p, err := plan.Make(defs, snap, opts)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// seedImage plans the factory image (base.d on a blank 545 MiB disk) and
// returns a snapshot of it dd'ed onto a disk of size bytes.
func seedImage(b *testing.B, size uint64) plan.Snapshot {
	b.Helper()
	blank := plan.Snapshot{Size: benchBaseSize, SectorSize: 512, Label: plan.LabelNone}
	p := mustPlanB(b, loadDefs(b, filepath.Join(benchSeedDir, "base.d")), blank, plan.Options{Empty: plan.EmptyCreate, Seed: benchSeed})
	return plan.Snapshot{Size: size, SectorSize: 512, Label: plan.LabelGPT, Table: p.New}
}

// BenchmarkFirstRun plans the first boot (relocate the backup GPT, add
// home and var) on the seed image grown to each disk size.
func BenchmarkFirstRun(b *testing.B) {
	for _, ds := range benchDiskSizes {
		b.Run("size="+ds.name, func(b *testing.B) {
			defs := loadDefs(b, filepath.Join(benchSeedDir, "defs"))
			snap := seedImage(b, ds.bytes)
			opts := plan.Options{Seed: benchSeed}
			if p := mustPlanB(b, defs, snap, opts); len(p.Steps) == 0 {
				b.Fatal("the first run planned nothing")
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := plan.Make(defs, snap, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNoop plans every later boot: the table already has home and
// var, so the plan has no steps.
func BenchmarkNoop(b *testing.B) {
	for _, ds := range benchDiskSizes {
		b.Run("size="+ds.name, func(b *testing.B) {
			defs := loadDefs(b, filepath.Join(benchSeedDir, "defs"))
			opts := plan.Options{Seed: benchSeed}
			first := mustPlanB(b, defs, seedImage(b, ds.bytes), opts)
			snap := plan.Snapshot{Size: ds.bytes, SectorSize: 512, Label: plan.LabelGPT, Table: first.New}
			if p := mustPlanB(b, defs, snap, opts); p.Changed() {
				b.Fatalf("the second run is not a no-op: %d steps", len(p.Steps))
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := plan.Make(defs, snap, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDefinitions plans n new ext4 partitions of different weights
// on the seed image grown to 1 TiB (n = 100 nearly fills the 128 slots).
// The type is srv: a linux-generic definition would claim the store.
func BenchmarkDefinitions(b *testing.B) {
	for _, n := range []int{1, 8, 32, 100} {
		b.Run(fmt.Sprintf("defs=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			for i := range n {
				conf := fmt.Sprintf("[Partition]\nType=srv\nLabel=part-%d\nFormat=ext4\nWeight=%d\n", i, 100+i*10)
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d-part.conf", i)), []byte(conf), 0o644); err != nil {
					b.Fatal(err)
				}
			}
			defs := loadDefs(b, dir)
			snap := seedImage(b, benchTiB)
			opts := plan.Options{Seed: benchSeed}
			if p := mustPlanB(b, defs, snap, opts); len(p.New.Entries) != n+2 {
				b.Fatalf("planned %d entries, want %d", len(p.New.Entries), n+2)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := plan.Make(defs, snap, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
