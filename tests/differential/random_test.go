package differential

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// defaultMasterSeed makes `make test` deterministic; SPROUT_DIFF_SEED=random
// explores new cases (the seed is printed, so any failure can be replayed).
const defaultMasterSeed = 20251126

// baseImage is a cached starting image for random cases. Most bases are
// made by systemd-repart itself (--empty=require on a blank file); a few
// come from sfdisk scripts for layouts repart would not make (entry holes,
// unaligned partitions, first-lba 34); one stays blank.
type baseImage struct {
	name       string
	size       string
	sectorSize int64             // 0 = 512; others are built and used on loop devices (root only)
	weight     int               // how often cases start from it
	defs       map[string]string // file name → contents of systemd-repart definitions
	script     string            // or: an sfdisk script
	path       string            // built image
	table      *harness.Table    // nil for a blank image
}

// randomBases are small on purpose: growth makes them big, sparsely.
func randomBases() []*baseImage {
	return []*baseImage{
		{name: "esp-store", size: "545M", weight: 16, defs: map[string]string{
			"10-esp.conf":   "Type=esp\nFormat=vfat\nLabel=boot\nSizeMinBytes=200M\nSizeMaxBytes=200M\n",
			"20-store.conf": "Type=linux-generic\nLabel=nix-store\nSizeMinBytes=359964672\nSizeMaxBytes=359964672\n",
		}},
		{name: "root", size: "1G", weight: 12, defs: map[string]string{
			"10-root.conf": "Type=root\nFormat=ext4\nSizeMinBytes=300M\nSizeMaxBytes=300M\n",
		}},
		{name: "esp-gap-root-swap", size: "1G", weight: 12, defs: map[string]string{
			"10-esp.conf":  "Type=esp\nFormat=vfat\nSizeMinBytes=64M\nSizeMaxBytes=64M\nPaddingMinBytes=135M\nPaddingMaxBytes=135M\n",
			"20-root.conf": "Type=root\nSizeMinBytes=300M\nSizeMaxBytes=300M\nPaddingMinBytes=50M\nPaddingMaxBytes=50M\n",
			"30-swap.conf": "Type=swap\nFormat=swap\nSizeMinBytes=64M\nSizeMaxBytes=64M\n",
		}},
		{name: "multi", size: "2G", weight: 12, defs: map[string]string{
			"10-esp.conf":      "Type=esp\nFormat=vfat\nSizeMinBytes=100M\nSizeMaxBytes=100M\n",
			"20-xbootldr.conf": "Type=xbootldr\nSizeMinBytes=64M\nSizeMaxBytes=64M\nPaddingMinBytes=32M\nPaddingMaxBytes=32M\n",
			"30-root.conf":     "Type=root\nFormat=ext4\nSizeMinBytes=512M\nSizeMaxBytes=512M\n",
			"40-usr.conf":      "Type=usr\nSizeMinBytes=256M\nSizeMaxBytes=256M\nPaddingMinBytes=10M\nPaddingMaxBytes=10M\n",
			"50-home.conf":     "Type=home\nFormat=ext4\nLabel=home\nSizeMinBytes=200M\nSizeMaxBytes=200M\n",
		}},
		{name: "full", size: "256M", weight: 10, defs: map[string]string{
			"10-data.conf": "Type=linux-generic\nLabel=data\nFormat=ext4\n",
		}},
		{name: "foreign", size: "512M", weight: 10, defs: map[string]string{
			"10-bios.conf": "Type=21686148-6449-6e6f-744e-656564454649\nSizeMinBytes=1M\nSizeMaxBytes=1M\n",
			"20-data.conf": "Type=linux-generic\nSizeMinBytes=100M\nSizeMaxBytes=100M\n",
			"30-lvm.conf":  "Type=e6d6d379-f507-44c2-a23c-238f2a3df928\nSizeMinBytes=100M\nSizeMaxBytes=100M\nPaddingMinBytes=20M\nPaddingMaxBytes=20M\n",
		}},
		{name: "blank", size: "256M", weight: 14},
		{name: "sfdisk-holes", size: "1G", weight: 8, script: `label: gpt
label-id: 5B1C5E4C-0D6C-4E7B-9B7A-3F1B8D2A1E01
first-lba: 2048
disk1 : start=2048, size=131072, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=0C2E2A41-9B8E-4C8B-8F3E-1A2B3C4D5E01, name="esp"
disk3 : start=409600, size=614400, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=0C2E2A41-9B8E-4C8B-8F3E-1A2B3C4D5E03
disk5 : start=1200000, size=100000, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, uuid=0C2E2A41-9B8E-4C8B-8F3E-1A2B3C4D5E05, name="swap"
`},
		{name: "sfdisk-unaligned", size: "2G", weight: 6, script: `label: gpt
label-id: 3C1F0A52-6E0B-4F45-9D0C-2B7A11D0E001
start=2048, size=69044, uuid=3C1F0A52-6E0B-4F45-9D0C-2B7A11D0E101
start=71092, size=1591848, uuid=3C1F0A52-6E0B-4F45-9D0C-2B7A11D0E102
`},
		{name: "sfdisk-firstlba34-swapped-roots", size: "768M", weight: 6, script: `label: gpt
label-id: 7E2D9C1B-4A3F-4B8E-9C6D-1F0E2A3B4C01
first-lba: 34
disk1 : start=300001, size=204799, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=7E2D9C1B-4A3F-4B8E-9C6D-1F0E2A3B4C11
disk2 : start=34, size=81920, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=7E2D9C1B-4A3F-4B8E-9C6D-1F0E2A3B4C12, name="root-b"
disk4 : start=100000, size=50000, type=21686148-6449-6E6F-744E-656564454649, uuid=7E2D9C1B-4A3F-4B8E-9C6D-1F0E2A3B4C14
`},
		{name: "esp-store-4k", size: "545M", sectorSize: 4096, weight: 7, defs: map[string]string{
			"10-esp.conf":   "Type=esp\nFormat=vfat\nLabel=boot\nSizeMinBytes=200M\nSizeMaxBytes=200M\n",
			"20-store.conf": "Type=linux-generic\nLabel=nix-store\nSizeMinBytes=359964672\nSizeMaxBytes=359964672\n",
		}},
		{name: "root-home-4k", size: "1G", sectorSize: 4096, weight: 7, defs: map[string]string{
			"10-root.conf": "Type=root\nFormat=ext4\nSizeMinBytes=300M\nSizeMaxBytes=300M\nPaddingMinBytes=20M\nPaddingMaxBytes=20M\n",
			"20-home.conf": "Type=home\nFormat=ext4\nSizeMinBytes=100M\nSizeMaxBytes=100M\n",
		}},
	}
}

// buildBases creates the base images in dir with the oracle. Bases with
// another sector size are skipped (left out of the result) unless loop
// devices can be used.
func buildBases(ctx context.Context, dir string, withLoop bool) ([]*baseImage, error) {
	var bases []*baseImage
	for _, b := range randomBases() {
		if b.sectorSize == 0 {
			b.sectorSize = 512
		}
		if b.sectorSize != 512 && !withLoop {
			continue
		}
		b.path = filepath.Join(dir, b.name+".img")
		bases = append(bases, b)
		size, err := harness.ParseSize(b.size)
		if err != nil {
			return nil, err
		}
		if err := harness.CreateSparse(b.path, size); err != nil {
			return nil, err
		}
		bc := &diffCase{sectorSize: b.sectorSize, loop: b.sectorSize != 512}
		if b.script != "" {
			err := withDevice(ctx, bc, b.path, func(dev string) error {
				if _, err := harness.RunInput(ctx, []byte(b.script), "sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", dev); err != nil {
					return err
				}
				b.table, err = harness.ReadTable(ctx, dev)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("build base %s: %w", b.name, err)
			}
			continue
		}
		if b.defs == nil {
			continue
		}
		defDir := filepath.Join(dir, b.name+".d")
		if err := os.Mkdir(defDir, 0o755); err != nil {
			return nil, err
		}
		for name, body := range b.defs {
			if err := os.WriteFile(filepath.Join(defDir, name), []byte("[Partition]\n"+body), 0o644); err != nil {
				return nil, err
			}
		}
		err = withDevice(ctx, bc, b.path, func(dev string) error {
			if _, err := harness.MustSucceed(ctx, harness.HostRepart, "--empty=require", "--dry-run=no",
				"--seed=0123456789abcdef0123456789abcdef", "--definitions="+defDir, dev); err != nil {
				return err
			}
			b.table, err = harness.ReadTable(ctx, dev)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("build base %s: %w", b.name, err)
		}
	}
	return bases, nil
}

func TestRandom(t *testing.T) {
	s := begin(t)
	master, err := masterSeed()
	if err != nil {
		t.Fatal(err)
	}
	n, err := harness.EnvInt(envCases, defaultCases)
	if err != nil {
		t.Fatal(err)
	}
	only := os.Getenv(envCaseSeed)
	t.Logf("random cases: %s=%d, %s=%d", envSeed, master, envCases, n)
	withLoop := len(harness.MissingTools("losetup")) == 0
	if !withLoop {
		if harness.EnvBool(harness.EnvRequireTools) {
			t.Fatalf("losetup missing (%s=1)", harness.EnvRequireTools)
		}
		t.Logf("no losetup: random cases on 4096-byte-sector loop devices are left out")
	}
	bases, err := buildBases(context.Background(), t.TempDir(), withLoop)
	if err != nil {
		t.Fatal(err)
	}
	s.eachOracle(t, func(t *testing.T, s *suite) {
		// Each oracle gets cases of its own (the seeds differ by version),
		// so more of the input space is covered at the same cost.
		var seeds []uint64
		if only != "" {
			v, err := strconv.ParseUint(only, 10, 64)
			if err != nil {
				t.Fatalf("%s=%q: %v", envCaseSeed, only, err)
			}
			seeds = []uint64{v}
		} else {
			for i := range n {
				seeds = append(seeds, caseSeed(master+uint64(s.oracle.Version), i))
			}
		}
		for i, seed := range seeds {
			t.Run(fmt.Sprintf("case%03d-%d", i, seed), func(t *testing.T) {
				t.Parallel()
				s.acquire(t)
				dir := t.TempDir()
				c, err := generateCase(seed, bases, dir)
				if err != nil {
					t.Fatalf("generate case (%s=%d): %v", envCaseSeed, seed, err)
				}
				c.repro = fmt.Sprintf("%s=%s %s", harness.EnvOracles, s.oracle.Name, c.repro)
				s.runAndReport(t, c, dir)
			})
		}
	})
}

func masterSeed() (uint64, error) {
	v := os.Getenv(envSeed)
	switch v {
	case "":
		return defaultMasterSeed, nil
	case "random":
		return uint64(time.Now().UnixNano()), nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: %w", envSeed, v, err)
	}
	return n, nil
}

// caseSeed derives the i-th case's seed (splitmix64), so one case can be
// replayed alone with SPROUT_DIFF_CASE_SEED.
func caseSeed(master uint64, i int) uint64 {
	z := master + uint64(i+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return (z ^ (z >> 31)) % 1_000_000_000_000
}

// growths are what the disk gains over the image: none, less than a grain
// boundary, a little, and typical to huge disks.
var growths = []struct {
	bytes  int64
	weight int
}{{0, 15}, {3<<20 + 4096 + 512, 10}, {64 << 20, 15}, {10 << 30, 25}, {1 << 40, 15}, {2 << 40, 20}}

// generateCase builds the case for seed in dir: the grown input image and a
// definitions directory.
func generateCase(seed uint64, bases []*baseImage, dir string) (*diffCase, error) {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	g := &gen{r: r}
	var bw, gw []int
	for _, b := range bases {
		bw = append(bw, b.weight)
	}
	for _, x := range growths {
		gw = append(gw, x.weight)
	}
	base := bases[g.weighted(bw)]
	grow := growths[g.weighted(gw)].bytes
	grow -= grow % base.sectorSize // a disk is whole sectors

	c := &diffCase{
		name:       fmt.Sprintf("random-%d", seed),
		repro:      fmt.Sprintf("%s=%d go test ./tests/differential -run TestRandom", envCaseSeed, seed),
		input:      filepath.Join(dir, "input.img"),
		sectorSize: base.sectorSize,
		loop:       base.sectorSize != 512,
		repartSeed: g.uuid(),
		rerun:      true,
	}
	if err := harness.CopySparse(base.path, c.input); err != nil {
		return nil, err
	}
	size, err := harness.Size(c.input)
	if err != nil {
		return nil, err
	}
	if err := harness.Resize(c.input, size+grow); err != nil {
		return nil, err
	}

	blobs, err := g.writeBlobs(c.input, base, size, size+grow)
	if err != nil {
		return nil, err
	}

	switch {
	case base.table == nil: // blank disk: exercise every --empty= mode
		c.args = []string{[]string{"--empty=refuse", "--empty=allow", "--empty=require", "--empty=force"}[g.weighted([]int{15, 35, 25, 25})]}
	case r.IntN(100) < 4:
		c.args = []string{"--empty=force"}
	case r.IntN(100) < 3:
		c.args = []string{"--empty=require"}
	case r.IntN(100) < 3:
		c.args = []string{"--empty=allow"}
	}

	defDir := filepath.Join(dir, "definitions")
	if err := os.Mkdir(defDir, 0o755); err != nil {
		return nil, err
	}
	defs := g.definitions(base.table)
	var listing []string
	for _, d := range defs {
		if err := os.WriteFile(filepath.Join(defDir, d.file), []byte(d.body()), 0o644); err != nil {
			return nil, err
		}
		listing = append(listing, d.file)
	}
	c.defDirs = []string{defDir}
	c.describe = fmt.Sprintf("base %q (%s, %d-byte sectors, %s) grown by %s (%d bytes) to %d bytes; data blobs at %v; flags %q; definitions %s",
		base.name, base.size, base.sectorSize, tableSummary(base.table), harness.FormatSize(grow), grow, size+grow, blobs, c.args, strings.Join(listing, " "))
	return c, nil
}

func tableSummary(t *harness.Table) string {
	if t == nil {
		return "no partition table"
	}
	var parts []string
	for _, p := range t.Partitions {
		parts = append(parts, fmt.Sprintf("#%d %s %s@%d+%d", p.Entry, typeName(p.Type), p.Name, p.Start, p.Size))
	}
	return strings.Join(parts, ", ")
}

// gen draws the random parts of a case.
type gen struct{ r *rand.Rand }

func (g *gen) weighted(w []int) int {
	total := 0
	for _, x := range w {
		total += x
	}
	n := g.r.IntN(total)
	for i, x := range w {
		if n < x {
			return i
		}
		n -= x
	}
	return len(w) - 1
}

func (g *gen) percent(p int) bool { return g.r.IntN(100) < p }

func pick[T any](g *gen, xs ...T) T { return xs[g.r.IntN(len(xs))] }

func (g *gen) uuid() string {
	return fmt.Sprintf("%016x%016x", g.r.Uint64(), g.r.Uint64())
}

// definition is one generated repart.d file.
type definition struct {
	file  string
	lines []string
}

func (d definition) body() string {
	return "[Partition]\n" + strings.Join(d.lines, "\n") + "\n"
}

// typeNames maps type GUIDs of base partitions to names a definition may use.
var typeNames = map[string][]string{
	"C12A7328-F81F-11D2-BA4B-00A0C93EC93B": {"esp"},
	"BC13C2FF-59E6-4262-A352-B275FD6F7172": {"xbootldr"},
	"0657FD6D-A4AB-43C4-84E5-0933C84B4F4F": {"swap"},
	"933AC7E1-2EB4-4F13-B844-0E14E2AEF915": {"home"},
	"0FC63DAF-8483-4772-8E79-3D69D8477DE4": {"linux-generic", "0fc63daf-8483-4772-8e79-3d69d8477de4"},
	"4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709": {"root", "root-x86-64", "4f68bce3e8cd4db196e7fbcaf984b709"},
	"8484680C-9521-48C6-9C11-B0720656F69E": {"usr", "usr-x86-64"},
}

func typeName(guid string) string {
	if n, ok := typeNames[guid]; ok {
		return n[0]
	}
	return strings.ToLower(guid)
}

// newTypes are the types of definitions that create partitions.
var newTypes = []string{"esp", "xbootldr", "swap", "home", "srv", "var", "tmp", "user-home", "linux-generic",
	"root", "usr", "root-x86-64", "usr-x86-64", "root-secondary", "usr-secondary", "root-x86",
	"0fc63daf-8483-4772-8e79-3d69d8477de4", "a2a0d0eb-e5b9-3344-87c0-68b6b72699c7"}

// definitions generates a set: some match the existing partitions by type
// (so they may grow), some create new partitions.
func (g *gen) definitions(t *harness.Table) []definition {
	var defs []definition
	if t != nil {
		for _, p := range t.Partitions {
			names, known := typeNames[p.Type]
			if !known {
				names = []string{strings.ToLower(p.Type)}
			}
			if !g.percent(75) {
				continue
			}
			defs = append(defs, g.definition(pick(g, names...), &p, t))
			if g.percent(8) { // a second definition of the same type creates a new partition
				defs = append(defs, g.definition(pick(g, names...), nil, nil))
			}
		}
	}
	for range []int{0, 1, 2, 3, 4}[g.weighted([]int{10, 25, 30, 20, 15})] {
		defs = append(defs, g.definition(pick(g, newTypes...), nil, nil))
	}
	// File names decide the list order; draw prefixes independently of the
	// partitions' disk order.
	used := map[string]bool{}
	for i := range defs {
		for {
			stem := strings.SplitN(strings.TrimPrefix(defs[i].lines[0], "Type="), "-", 2)[0]
			name := fmt.Sprintf("%02d-%s.conf", g.r.IntN(100), stem)
			if g.percent(5) {
				name = fmt.Sprintf("%s%d.conf", stem, g.r.IntN(10))
			}
			if !used[name] {
				used[name] = true
				defs[i].file = name
				break
			}
		}
	}
	return defs
}

var (
	minSizes = []string{"4K", "1M", "1.5M", "10M", "15000000", "32M", "64M", "100M", "200M", "512M", "1G", "4G", "10G", "100G", "1T", "1.5T"}
	maxSizes = []string{"1.5M", "10M", "15000000", "64M", "100M", "256M", "1G", "5G", "100G", "1T", "3T"}
	// Labels sprout refuses (over 36 bytes, % specifiers) are documented
	// deviations, covered by the q-252-quirks scenario, not drawn here.
	labels = []string{"home", "var", "data", "store", "boot", "root-x86-64", "x", "hëllo wörld", "",
		"exactly-thirty-six-bytes-long-label1", "label with spaces", "dup", "dup"}
)

// definition draws one definition; existing is the partition it is meant
// to match (nil for a new one).
func (g *gen) definition(typ string, existing *harness.Partition, t *harness.Table) definition {
	d := definition{lines: []string{"Type=" + typ}}
	add := func(format string, args ...any) { d.lines = append(d.lines, fmt.Sprintf(format, args...)) }

	var minB, maxB int64 = -1, -1
	if g.percent(45) {
		minB, _ = harness.ParseSize(pick(g, minSizes...))
	}
	if g.percent(40) {
		maxB, _ = harness.ParseSize(pick(g, maxSizes...))
	}
	if existing != nil && g.percent(35) {
		maxB = existing.SizeBytes(t) // keep it as it is
		if g.percent(50) {
			minB = maxB
		}
	}
	if minB >= 0 && maxB >= 0 && minB > maxB && !g.percent(3) { // 3%: invalid on purpose (both must refuse)
		minB, maxB = maxB, minB
	}

	format := ""
	switch n := g.r.IntN(100); {
	case n < 30:
		format = "ext4"
	case n < 38:
		format = "swap"
	case n < 45: // FAT32 needs ≥ ~33 MiB; keep it small and bounded
		format = "vfat"
		minB, _ = harness.ParseSize(pick(g, "64M", "100M", "200M", "512M"))
		maxB = minB
	case n < 48 && len(harness.MissingTools("mkfs.btrfs")) == 0:
		format = "btrfs"
		minB, _ = harness.ParseSize(pick(g, "256M", "300M", "512M"))
		maxB = max(minB, 1<<30)
	case n < 51 && len(harness.MissingTools("mkfs.xfs")) == 0: // mkfs.xfs 6.x refuses < 300 MB
		format = "xfs"
		minB, _ = harness.ParseSize(pick(g, "320M", "512M", "1G"))
		maxB = minB
	}
	if format != "" && (existing == nil || g.percent(30)) {
		add("Format=%s", format)
	}
	if minB >= 0 {
		add("SizeMinBytes=%d", minB)
	}
	if maxB >= 0 {
		add("SizeMaxBytes=%d", maxB)
	}
	if g.percent(60) {
		add("Weight=%d", pick(g, 0, 1, 10, 250, 500, 750, 1000, 1500, 2000, 5000, 1000000))
	}
	if g.percent(20) {
		add("PaddingWeight=%d", pick(g, 0, 1, 100, 500, 1000, 2000))
	}
	var pmin, pmax int64 = -1, -1
	if g.percent(15) {
		pmin, _ = harness.ParseSize(pick(g, "1M", "4M", "33M", "92M", "1G"))
	}
	if g.percent(15) {
		pmax, _ = harness.ParseSize(pick(g, "1M", "100M", "1G", "100G"))
	}
	if pmin >= 0 && pmax >= 0 && pmin > pmax {
		pmin, pmax = pmax, pmin
	}
	if pmin >= 0 {
		add("PaddingMinBytes=%d", pmin)
	}
	if pmax >= 0 {
		add("PaddingMaxBytes=%d", pmax)
	}
	if g.percent(30) {
		add("Priority=%d", pick(g, -1, 0, 1, 2, 5, 10, 100))
	}
	if g.percent(45) {
		add("Label=%s", pick(g, labels...))
	}
	switch n := g.r.IntN(100); {
	case n < 5:
		add("UUID=%s", g.uuid())
	case n < 7:
		add("UUID=null")
	}
	switch n := g.r.IntN(100); {
	case n < 4:
		add("ReadOnly=%s", pick(g, "yes", "no"))
	case n < 8:
		add("NoAuto=%s", pick(g, "yes", "no"))
	case n < 12:
		// GrowFileSystem=no on a type that knows it is a documented
		// deviation (252 ignores it); q-252-quirks covers it.
		if growsFS(typ) {
			add("GrowFileSystem=yes")
		} else {
			add("GrowFileSystem=%s", pick(g, "yes", "no"))
		}
	case n < 14:
		// Bits below 48 are a documented deviation (252 drops all
		// attributes); q-252-quirks covers them.
		add("Flags=%s", pick(g, "0x1000000000000000", "0x8000000000000000", "1152921504606846976"))
	case n < 15:
		add("FactoryReset=yes")
	}
	// Shuffle all but Type= so key order varies (it must not matter).
	rest := d.lines[1:]
	g.r.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	return d
}

// growsFS reports whether a Type= value names a type with the
// GrowFileSystem attribute (root, usr, home, srv, var, tmp, xbootldr).
func growsFS(typ string) bool {
	switch strings.ReplaceAll(strings.ToLower(typ), "-", "") {
	case "4f68bce3e8cd4db196e7fbcaf984b709", "8484680c952148c69c11b0720656f69e", // root, usr (x86-64)
		"933ac7e12eb44f13b8440e14e2aef915": // home
		return true
	}
	for _, p := range []string{"root", "usr", "home", "srv", "var", "tmp", "xbootldr"} {
		if typ == p || strings.HasPrefix(typ, p+"-") {
			return !strings.Contains(typ, "verity")
		}
	}
	return false
}

// writeBlobs puts a few 4 KiB data blobs into unpartitioned space (like a
// bootloader stored between partitions, or old data on the bigger disk), so
// that what each tool does to free space is compared too. It returns their
// byte offsets.
func (g *gen) writeBlobs(img string, base *baseImage, oldSize, newSize int64) ([]int64, error) {
	if !g.percent(70) {
		return nil, nil
	}
	ss := base.sectorSize
	const entries = 128 * 128
	type span struct{ from, to int64 }
	free := []span{{2*ss + entries, oldSize - ss - entries}}
	if newSize > oldSize {
		free = append(free, span{oldSize, newSize - ss - entries})
	}
	if base.table != nil {
		for _, p := range base.table.Partitions {
			ps, pe := p.StartBytes(base.table), p.StartBytes(base.table)+p.SizeBytes(base.table)
			var next []span
			for _, f := range free {
				if pe <= f.from || ps >= f.to {
					next = append(next, f)
					continue
				}
				next = append(next, span{f.from, ps}, span{pe, f.to})
			}
			free = next
		}
	}
	var usable []span
	for _, f := range free {
		if f.to-f.from >= 2*4096 {
			usable = append(usable, f)
		}
	}
	if len(usable) == 0 {
		return nil, nil
	}
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var offsets []int64
	for range 1 + g.r.IntN(3) {
		sp := usable[g.r.IntN(len(usable))]
		off := sp.from + g.r.Int64N((sp.to-sp.from-4096)/512+1)*512
		blob := []byte(strings.Repeat(fmt.Sprintf("sprout-blob@%d;", off), 4096/16+1))[:4096]
		if _, err := f.WriteAt(blob, off); err != nil {
			return nil, err
		}
		offsets = append(offsets, off)
	}
	return offsets, f.Close()
}
