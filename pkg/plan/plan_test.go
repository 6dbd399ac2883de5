package plan

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/encryption"
	"github.com/sprout-initrd/sprout/pkg/fstype"
	"github.com/sprout-initrd/sprout/pkg/gpt"
	"github.com/sprout-initrd/sprout/pkg/parttype"
	"github.com/sprout-initrd/sprout/pkg/repartd"
)

// The vectors below were produced by the installed systemd-repart 252
// (research/repart.md §1.9, §8); the differential tier re-checks such
// cases against the binary on every run.

const (
	gib = 1 << 30
)

func typ(t *testing.T, name string) uuid.UUID {
	t.Helper()
	g, ok := parttype.Lookup(name)
	if !ok {
		t.Fatalf("unknown type %q", name)
	}
	return g
}

// def builds a definition with systemd's defaults; opts are "Key=Value".
func def(t *testing.T, file, typeName string, opts ...string) repartd.Definition {
	t.Helper()
	d := repartd.Definition{
		File: file + ".conf", Path: "/defs/" + file + ".conf", Type: typ(t, typeName),
		Weight: 1000, SizeMin: repartd.Unset, SizeMax: repartd.Unset,
		PaddingMin: repartd.Unset, PaddingMax: repartd.Unset,
		NoAuto: repartd.TriUnset, ReadOnly: repartd.TriUnset, GrowFileSystem: repartd.TriUnset,
	}
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		var n uint64
		fmt.Sscan(v, &n)
		switch k {
		case "Format":
			d.Format = v
		case "Weight":
			d.Weight = uint32(n)
		case "PaddingWeight":
			d.PaddingWeight = uint32(n)
		case "SizeMin":
			d.SizeMin = n
		case "SizeMax":
			d.SizeMax = n
		case "PaddingMin":
			d.PaddingMin = n
		case "PaddingMax":
			d.PaddingMax = n
		case "Priority":
			var p int32
			fmt.Sscan(v, &p)
			d.Priority = p
		case "Label":
			d.Label = &v
		case "Encrypt":
			d.Encrypt = encryption.Mode(v)
		default:
			t.Fatalf("def: unknown option %q", o)
		}
	}
	return d
}

// table builds an existing 512-byte-sector GPT; entries are
// "index:type:start:sectors".
func table(t *testing.T, diskBytes uint64, firstUsable uint64, entries ...string) *gpt.Table {
	t.Helper()
	total := diskBytes / 512
	tb := &gpt.Table{
		SectorSize: 512, DiskGUID: uuid.MustParse("11111111-2222-4333-8444-555555555555"),
		FirstUsableLBA: firstUsable, LastUsableLBA: total - 34, BackupLBA: total - 1,
		EntryCount: 128, EntrySize: 128,
	}
	for _, e := range entries {
		var idx int
		var name string
		var start, sectors uint64
		f := strings.Split(e, ":")
		fmt.Sscan(f[0], &idx)
		name = f[1]
		fmt.Sscan(f[2], &start)
		fmt.Sscan(f[3], &sectors)
		tb.Entries = append(tb.Entries, gpt.Entry{
			Index: idx, Type: typ(t, name), UUID: uuid.New(), FirstLBA: start, LastLBA: start + sectors - 1,
		})
	}
	return tb
}

func existing(tb *gpt.Table, size uint64) Snapshot {
	return Snapshot{Size: size, SectorSize: tb.SectorSize, Label: LabelGPT, Table: tb}
}

func blank(size uint64, sector int) Snapshot {
	return Snapshot{Size: size, SectorSize: sector, Label: LabelNone}
}

// layoutOf renders "file@index:start+sectors" for each row, in list order.
func layoutOf(p *Plan) string {
	var parts []string
	for _, r := range p.Partitions {
		parts = append(parts, fmt.Sprintf("%s@%d:%d+%d", strings.TrimSuffix(r.File, ".conf"), r.Index,
			r.Offset/uint64(p.SectorSize), r.NewSize/uint64(p.SectorSize)))
	}
	return strings.Join(parts, " ")
}

func mustPlan(t *testing.T, defs []repartd.Definition, snap Snapshot, opts Options) *Plan {
	t.Helper()
	p, err := Make(defs, snap, opts)
	if err != nil {
		t.Fatalf("Make: %v", err)
	}
	return p
}

var (
	seedA = uuid.MustParse("0123456789abcdef0123456789abcdef")
	seedB = uuid.MustParse("750b6cd5c4ae4012a15e7be3c29e6a47") // upstream TEST-58 seed
)

func TestFreshDiskWorkedExample(t *testing.T) {
	defs := []repartd.Definition{
		def(t, "00-esp", "esp", "Format=vfat", "SizeMin=67108864", "SizeMax=67108864"),
		def(t, "10-root", "root", "Format=ext4", "SizeMin=314572800"),
		def(t, "20-swap", "swap", "Format=swap", "SizeMin=104857600", "SizeMax=104857600"),
		def(t, "30-home", "home", "Format=ext4", "Weight=500"),
	}
	p := mustPlan(t, defs, blank(2*gib, 512), Options{Compat: compat.Oldest, Empty: EmptyCreate, Seed: seedA})
	want := "00-esp@1:2048+131072 10-root@2:133120+2570896 20-swap@3:2704016+204800 30-home@4:2908816+1285448"
	if got := layoutOf(p); got != want {
		t.Errorf("layout\n got %s\nwant %s", got, want)
	}
	if got := p.New.DiskGUID.String(); got != "6913f4b6-6690-4a57-a202-f1b53c56dbdf" {
		t.Errorf("disk GUID %s", got)
	}
	wantIDs := []struct{ label, part, fs string }{
		{"esp", "b2d552b0-45db-4678-b34f-066168609d1a", "5739c63f-aa2f-465b-b8da-bae50b7d9d59"},
		{"root-x86-64", "9e90c9c3-c7e8-44f2-bf19-9ae2689de795", "e23fa935-5911-428c-b168-a4b761ee82bd"},
		{"swap", "ee4c2391-c423-44cf-8019-444f4561b526", "825aeeb7-e655-4d2d-b083-9f6584b3b9f7"},
		{"home", "c6384fca-e59b-4b73-a86f-ab8b15536288", "262afe25-c985-4002-86e6-146a18a7febd"},
	}
	for i, w := range wantIDs {
		r := p.Partitions[i]
		if r.Label != w.label || r.UUID.String() != w.part || r.FileSystemUUID.String() != w.fs {
			t.Errorf("row %d: label %q uuid %s fs %s, want %q %s %s", i, r.Label, r.UUID, r.FileSystemUUID, w.label, w.part, w.fs)
		}
	}
	if p.Partitions[1].Activity != Create {
		t.Errorf("activity %s", p.Partitions[1].Activity)
	}
}

func TestTestsuite58Basic(t *testing.T) {
	defs := []repartd.Definition{
		def(t, "home", "home"),
		def(t, "root", "root"),
		def(t, "root2", "root"),
		def(t, "swap", "swap", "SizeMax=67108864", "PaddingMin=96468992"),
	}
	p := mustPlan(t, defs, blank(gib, 512), Options{Compat: compat.Oldest, Empty: EmptyCreate, Seed: seedB})
	want := "home@1:2048+591856 root@2:593904+591856 root2@3:1185760+591864 swap@4:1777624+131072"
	if got := layoutOf(p); got != want {
		t.Fatalf("step 2 layout\n got %s\nwant %s", got, want)
	}
	ids := map[string]string{
		"home": "4980595d-d74a-483a-aa9e-9903879a0ee5", "root-x86-64": "60f33797-1d71-4dcb-aa6f-20564f036cd0",
		"root-x86-64-2": "73a4ccd2-eaf5-44da-a366-f99188210fdc", "swap": "78c92db8-3d2b-4823-b0dc-792b78f66f1e",
	}
	for _, r := range p.Partitions {
		if ids[r.Label] != r.UUID.String() {
			t.Errorf("%s: label %q uuid %s", r.File, r.Label, r.UUID)
		}
	}
	if p.New.DiskGUID.String() != "1d2ce291-7cce-4f7d-bc83-fdb49ad74ebd" {
		t.Errorf("disk GUID %s", p.New.DiskGUID)
	}

	// Step 3: the table of step 2 exists; swap lost its padding minimum
	// and a linux-generic "extra" partition is added.
	snap := existing(p.New, gib)
	defs3 := []repartd.Definition{
		def(t, "extra", "linux-generic"),
		def(t, "home", "home"),
		def(t, "root", "root"),
		def(t, "root2", "root"),
		def(t, "swap", "swap", "SizeMax=67108864"),
	}
	p3 := mustPlan(t, defs3, snap, Options{Compat: compat.Oldest, Seed: seedB})
	want3 := "extra@5:1908696+188416 home@1:2048+591856 root@2:593904+591856 root2@3:1185760+591864 swap@4:1777624+131072"
	if got := layoutOf(p3); got != want3 {
		t.Fatalf("step 3 layout\n got %s\nwant %s", got, want3)
	}
	if got := p3.Partitions[0].UUID.String(); got != "df71f5e3-080a-4d16-824b-18591b881380" {
		t.Errorf("extra uuid %s", got)
	}

	// Step 4: the image grows to 2 GiB: the backup moves and extra grows.
	snap4 := existing(p3.New, 2*gib)
	p4 := mustPlan(t, defs3, snap4, Options{Compat: compat.Oldest, Seed: seedB})
	if p4.New.LastUsableLBA != 4194270 {
		t.Errorf("last usable %d", p4.New.LastUsableLBA)
	}
	if got := p4.Partitions[0].NewSize / 512; got != 2285568 {
		t.Errorf("extra grew to %d sectors, want 2285568", got)
	}
	if _, ok := p4.Steps[0].(RelocateBackup); !ok {
		t.Errorf("first step %T, want RelocateBackup", p4.Steps[0])
	}
}

func TestSmallestHoleFirst(t *testing.T) {
	tb := table(t, gib, 2048, "1:esp:2048:131072", "3:root:409600:614400")
	defs := []repartd.Definition{
		def(t, "00-esp", "esp", "Format=vfat", "SizeMin=67108864", "SizeMax=67108864"),
		def(t, "10-root", "root"),
		def(t, "20-root-b", "root", "SizeMin=104857600", "SizeMax=104857600"),
		def(t, "30-swap", "swap", "SizeMin=52428800", "SizeMax=52428800"),
		def(t, "40-home", "home"),
	}
	p := mustPlan(t, defs, existing(tb, gib), Options{Compat: compat.Oldest, Seed: seedA})
	want := "00-esp@1:2048+131072 10-root@3:409600+1585112 20-root-b@4:133120+204800 30-swap@6:1994712+102400 40-home@5:337920+71680"
	if got := layoutOf(p); got != want {
		t.Errorf("layout\n got %s\nwant %s", got, want)
	}
	if got := p.Partitions[2].UUID.String(); got != "7f48db1a-b817-4c23-a5d2-cde068eb2163" {
		t.Errorf("root-b uuid %s", got)
	}
}

func TestUnalignedExisting(t *testing.T) {
	tb := table(t, 10*gib, 2048, "1:linux-generic:2048:69044", "2:linux-generic:71092:3591848")
	p := mustPlan(t, []repartd.Definition{def(t, "root", "root")}, existing(tb, 10*gib), Options{Compat: compat.Oldest, Seed: seedA})
	if got := layoutOf(p); got != "root@3:3662944+17308536 -@1:2048+69044 -@2:71092+3591848" {
		t.Errorf("layout %s", got)
	}
}

func TestIssue24553(t *testing.T) {
	esp, root := "1:esp:40:524288", "2:root:524328:14848000"
	rootDef := func(prio string) repartd.Definition {
		return def(t, "root", "root", "SizeMin=10737418240", "SizeMax=128849018880", "Priority="+prio)
	}
	usrDef := def(t, "usr", "usr", "SizeMin=10485760", "Priority=10")

	t.Run("8G refuses", func(t *testing.T) {
		_, err := Make([]repartd.Definition{rootDef("0")}, existing(table(t, 8*gib, 40, esp, root), 8*gib), Options{Compat: compat.Oldest, Seed: seedA})
		if !errors.Is(err, ErrNoSpace) {
			t.Fatalf("err %v, want ErrNoSpace", err)
		}
	})
	t.Run("12G grows root", func(t *testing.T) {
		p := mustPlan(t, []repartd.Definition{rootDef("0")}, existing(table(t, 12*gib, 40, esp, root), 12*gib), Options{Compat: compat.Oldest, Seed: seedA})
		if got := p.Partitions[0].NewSize / 512; got != 24641456 {
			t.Errorf("root %d sectors", got)
		}
	})
	t.Run("8G freezes root, adds usr", func(t *testing.T) {
		p := mustPlan(t, []repartd.Definition{rootDef("100"), usrDef}, existing(table(t, 8*gib, 40, esp, root), 8*gib), Options{Compat: compat.Oldest, Seed: seedA})
		if got := layoutOf(p); got != "-@2:524328+14848000 usr@3:15372328+1404848 -@1:40+524288" {
			t.Errorf("layout %s", got)
		}
	})
	t.Run("12G grows both", func(t *testing.T) {
		p := mustPlan(t, []repartd.Definition{rootDef("100"), usrDef}, existing(table(t, 12*gib, 40, esp, root), 12*gib), Options{Compat: compat.Oldest, Seed: seedA})
		if got := layoutOf(p); got != "root@2:524328+20971520 usr@3:21495848+3669936 -@1:40+524288" {
			t.Errorf("layout %s", got)
		}
	})
}

func TestSectorSizes(t *testing.T) {
	defs := []repartd.Definition{
		def(t, "a", "root", "SizeMin=15728640", "SizeMax=15728640"),
		def(t, "b", "linux-generic", "Weight=250"),
		def(t, "c", "linux-generic", "Weight=750"),
	}
	want := map[int]string{
		512:  "a@1:2048+30720 b@2:32768+42992 c@3:75760+129000",
		4096: "a@1:256+3840 b@2:4096+5374 c@3:9470+16125",
	}
	for sector, w := range want {
		p := mustPlan(t, defs, blank(100*mib, sector), Options{Compat: compat.Oldest, Empty: EmptyCreate, Seed: seedA})
		if got := layoutOf(p); got != w {
			t.Errorf("%d-byte sectors:\n got %s\nwant %s", sector, got, w)
		}
	}
}

func TestPadding(t *testing.T) {
	defs := []repartd.Definition{
		def(t, "root", "root", "PaddingWeight=500", "PaddingMax=104857600"),
		def(t, "home", "home", "Weight=500", "SizeMax=209715200", "PaddingMin=34603008"),
		def(t, "srv", "srv", "Weight=250", "PaddingWeight=250"),
	}
	p := mustPlan(t, defs, blank(gib, 512), Options{Compat: compat.Oldest, Empty: EmptyCreate, Seed: seedA})
	want := [][2]uint64{{482328576, 104857600}, {209715200, 34603008}, {120582144, 120586240}}
	for i, w := range want {
		r := p.Partitions[i]
		if r.NewSize != w[0] || r.NewPadding != w[1] {
			t.Errorf("%s: size %d padding %d, want %d %d", r.File, r.NewSize, r.NewPadding, w[0], w[1])
		}
	}
}

func TestExistingRootSharesWithNewHome(t *testing.T) {
	tb := table(t, gib, 2048, "1:root:2048:614400")
	p := mustPlan(t, []repartd.Definition{def(t, "10-root", "root"), def(t, "20-home", "home")}, existing(tb, gib), Options{Compat: compat.Oldest, Seed: seedA})
	if p.Partitions[0].NewSize != 536334336 || p.Partitions[1].NewSize != 536338432 { // measured with systemd-repart 252
		t.Errorf("root %d home %d", p.Partitions[0].NewSize, p.Partitions[1].NewSize)
	}
	if p.Partitions[0].Activity != Resize || p.Partitions[1].Activity != Create {
		t.Errorf("activities %s %s", p.Partitions[0].Activity, p.Partitions[1].Activity)
	}
}

func TestMatchingFollowsEntryOrder(t *testing.T) {
	// Entry 1 lies after entry 2 on disk; a.conf still matches entry 1.
	tb := table(t, gib, 2048, "1:root:100000:20480", "2:root:2048:20480")
	p := mustPlan(t, []repartd.Definition{def(t, "a", "root"), def(t, "b", "root")}, existing(tb, gib), Options{Compat: compat.Oldest, Seed: seedA})
	if p.Partitions[0].Index != 1 || p.Partitions[1].Index != 2 {
		t.Errorf("a→%d b→%d", p.Partitions[0].Index, p.Partitions[1].Index)
	}
}

func TestDroppedStillClaimsLabelAndCounter(t *testing.T) {
	defs := []repartd.Definition{
		def(t, "10-home", "home", "SizeMin=1099511627776", "Priority=5"),
		def(t, "20-home", "home"),
	}
	p := mustPlan(t, defs, blank(200*mib, 512), Options{Compat: compat.Oldest, Empty: EmptyCreate, Seed: seedA})
	if len(p.Dropped) != 1 || p.Dropped[0].File != "10-home.conf" {
		t.Fatalf("dropped %+v", p.Dropped)
	}
	r := p.Partitions[0]
	if r.Label != "home-2" || r.UUID.String() != "7ae905c9-911f-4881-bb6f-8ab32d50aeeb" {
		t.Errorf("label %q uuid %s", r.Label, r.UUID)
	}
}

func TestNoChangesIsEmptyPlan(t *testing.T) {
	defs := []repartd.Definition{def(t, "10-root", "root")}
	first := mustPlan(t, defs, blank(gib, 512), Options{Compat: compat.Oldest, Empty: EmptyCreate, Seed: seedA})
	again := mustPlan(t, defs, existing(first.New, gib), Options{Compat: compat.Oldest, Seed: seedA})
	if again.Changed() {
		t.Errorf("second plan has steps: %v", again.Steps)
	}
}

func TestEmptyModes(t *testing.T) {
	gptSnap := existing(table(t, gib, 2048), gib)
	other := Snapshot{Size: gib, SectorSize: 512, Label: LabelOther, OtherLabel: "dos"}
	cases := []struct {
		mode    EmptyMode
		snap    Snapshot
		scratch bool
		refused bool
	}{
		{EmptyRefuse, blank(gib, 512), false, true},
		{EmptyRefuse, other, false, true},
		{EmptyRefuse, gptSnap, false, false},
		{EmptyAllow, blank(gib, 512), true, false},
		{EmptyAllow, other, false, true},
		{EmptyAllow, gptSnap, false, false},
		{EmptyRequire, blank(gib, 512), true, false},
		{EmptyRequire, gptSnap, false, true},
		{EmptyRequire, other, false, true},
		{EmptyForce, gptSnap, true, false},
		{EmptyCreate, other, true, false},
	}
	for _, c := range cases {
		p, err := Make(nil, c.snap, Options{Compat: compat.Oldest, Empty: c.mode, Seed: seedA})
		var le *LabelError
		switch {
		case c.refused:
			if !errors.As(err, &le) {
				t.Errorf("%s on %v: err %v, want a LabelError", c.mode, c.snap.Label, err)
			}
		case err != nil:
			t.Errorf("%s on %v: %v", c.mode, c.snap.Label, err)
		case p.FromScratch != c.scratch:
			t.Errorf("%s on %v: from scratch %v", c.mode, c.snap.Label, p.FromScratch)
		}
	}
}

func TestDiskSmallerThanTable(t *testing.T) {
	tb := table(t, 2*gib, 2048, "1:root:2048:3000000")
	_, err := Make([]repartd.Definition{def(t, "root", "root")}, existing(tb, gib), Options{Compat: compat.Oldest, Seed: seedA})
	if err == nil || !strings.Contains(err.Error(), "smaller") {
		t.Fatalf("err %v", err)
	}
}

func TestAttributes(t *testing.T) {
	yes, no := repartd.TriYes, repartd.TriNo
	flags := func(v uint64) *uint64 { return &v }
	cases := []struct {
		name string
		typ  string
		mod  func(*repartd.Definition)
		want uint64
	}{
		{"home default growfs", "home", func(*repartd.Definition) {}, AttrGrowFileSystem},
		{"esp no flags", "esp", func(*repartd.Definition) {}, 0},
		{"noauto", "var", func(d *repartd.Definition) { d.NoAuto = yes }, AttrGrowFileSystem | AttrNoAuto},
		{"read-only stops growfs", "usr", func(d *repartd.Definition) { d.ReadOnly = yes }, AttrReadOnly},
		{"verity read-only by default", "root-verity", func(*repartd.Definition) {}, AttrReadOnly},
		{"growfs=no honoured", "home", func(d *repartd.Definition) { d.GrowFileSystem = no }, 0},
		{"low flag bits kept", "var", func(d *repartd.Definition) { d.Flags = flags(4) }, 4 | AttrGrowFileSystem},
		{"noauto on esp ignored", "esp", func(d *repartd.Definition) { d.NoAuto = yes }, 0},
	}
	for _, c := range cases {
		d := def(t, "x", c.typ)
		c.mod(&d)
		if got := newAttributes(&d, d.Type); got != c.want {
			t.Errorf("%s: %#x, want %#x", c.name, got, c.want)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	// Values from systemd-repart 252's tables.
	for v, want := range map[uint64]string{0: "0B", 1023: "1023B", 512000: "500.0K", 42778624: "40.7M",
		714809344: "681.6M", 67108864: "64.0M", 2079305728: "1.9G", 1 << 60: "1.0E", 2047: "1.9K"} {
		if got := FormatBytes(v); got != want {
			t.Errorf("FormatBytes(%d) = %s, want %s", v, got, want)
		}
	}
	// The same as the fmt formula it replaced, around every unit boundary.
	reference := func(v uint64) string {
		const units = "KMGTPE"
		if v < 1024 {
			return fmt.Sprintf("%dB", v)
		}
		unit, u := uint64(1024), 0
		for v/unit >= 1024 && u < len(units)-1 {
			unit *= 1024
			u++
		}
		return fmt.Sprintf("%d.%d%c", v/unit, (v%unit)*10/unit, units[u])
	}
	for shift := 0; shift < 64; shift++ {
		for _, v := range []uint64{1<<shift - 1, 1 << shift, 1<<shift + 1, 1<<shift*10 - 1, ^uint64(0) >> shift} {
			if got, want := FormatBytes(v), reference(v); got != want {
				t.Errorf("FormatBytes(%d) = %s, want %s", v, got, want)
			}
		}
	}
}

// Without definitions a grown disk is left alone under every --empty= mode
// that keeps the table (252: "No changes."), a damaged protective MBR
// included; the reported padding still reaches the real end of the disk,
// as 252's does.
func TestNoDefinitionsOnGrownDiskWritesNothing(t *testing.T) {
	tb := table(t, gib, 2048, "1:root:2048:409600")
	tb.ProtectiveMBRInvalid = "the protective MBR covers 7 sectors"
	for _, mode := range []EmptyMode{EmptyRefuse, EmptyAllow} {
		p := mustPlan(t, nil, existing(tb, 4*gib), Options{Compat: compat.Oldest, Empty: mode, Seed: seedA})
		if p.Changed() {
			t.Errorf("--empty=%v: steps %v", mode, p.Steps)
		}
		if len(p.Partitions) != 1 {
			t.Fatalf("--empty=%v: rows %v", mode, p.Partitions)
		}
		end := p.Partitions[0].Offset + p.Partitions[0].NewSize + p.Partitions[0].NewPadding
		// The end of the relocated usable area (LBA total-34), on the 4 KiB grain.
		if want := (uint64(4*gib) - 33*512) &^ 4095; end != want {
			t.Errorf("--empty=%v: partition and padding end at %d, want %d", mode, end, want)
		}
	}
	// With a definition the same disk gets its backup moved and the MBR repaired.
	p := mustPlan(t, []repartd.Definition{def(t, "10-root", "root")}, existing(tb, 4*gib), Options{Compat: compat.Oldest, Seed: seedA})
	var relocated, repaired bool
	for _, s := range p.Steps {
		switch s.(type) {
		case RelocateBackup:
			relocated = true
		case RepairTable:
			repaired = true
		}
	}
	if !relocated || !repaired {
		t.Errorf("with a definition: steps %v, want a relocation and a repair among them", p.Steps)
	}
}

// A repair that creates nothing still writes the table, and udev's watch
// re-reads it when sprout lets go of the disk: the plan waits for udev
// (the links of every partition) so that re-read happens before sprout
// returns, not under the mounts ordered after it.
func TestRepairWithoutNewPartitionsWaitsForUdev(t *testing.T) {
	tb := table(t, gib, 2048, "1:root:2048:409600")
	tb.PrimaryInvalid = "header CRC mismatch"
	p := mustPlan(t, []repartd.Definition{def(t, "10-root", "root")}, existing(tb, gib), Options{Compat: compat.Oldest, Seed: seedA})
	var repaired bool
	var wait *WaitForUdev
	for _, s := range p.Steps {
		switch s := s.(type) {
		case RepairTable:
			repaired = true
		case WaitForUdev:
			wait = &s
		}
	}
	if !repaired || wait == nil {
		t.Fatalf("steps %v, want a repair and a wait for udev", p.Steps)
	}
	want := "/dev/disk/by-partuuid/" + tb.Entries[0].UUID.String()
	if len(wait.Links) != 1 || wait.Links[0] != want {
		t.Errorf("wait for udev: links %v, want [%s]", wait.Links, want)
	}
}

// Whether a plan can run is the planner's decision, from the capabilities
// the caller probed: a new file system whose program is missing is
// refused, one that exists (or a partition without Format=) is not.
func TestMissingMkfsRefused(t *testing.T) {
	snap := existing(table(t, gib, 2048), 2*gib) // grown: the backup moves
	noExt4 := fstype.Capabilities{PageSize: 4096, Have: func(p string) bool { return p == "mkfs.xfs" }}
	_, err := Make([]repartd.Definition{def(t, "10-home", "home", "Format=ext4")}, snap, Options{Compat: compat.Oldest, Seed: seedA, Formats: noExt4})
	var fe *FormatError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "mkfs.ext4") {
		t.Fatalf("ext4 without mkfs.ext4: %v, want a FormatError naming mkfs.ext4", err)
	}
	if _, err := Make([]repartd.Definition{def(t, "10-home", "home", "Format=xfs")}, snap, Options{Compat: compat.Oldest, Seed: seedA, Formats: noExt4}); err != nil {
		t.Errorf("xfs with mkfs.xfs: %v", err)
	}
	if _, err := Make([]repartd.Definition{def(t, "10-home", "home")}, snap, Options{Compat: compat.Oldest, Seed: seedA, Formats: noExt4}); err != nil {
		t.Errorf("no Format=: %v", err)
	}
}

// TestFrozenListsLabel: an unnamed existing partition that Priority=
// freezes is listed by its definition's Label= from 254 on (never
// written); before, by nothing (the listing shows its type).
func TestFrozenListsLabel(t *testing.T) {
	tb := table(t, gib, 2048, "3:root:409600:614400")
	d := def(t, "15-root", "root", "SizeMin=1073741824", "Priority=1")
	label := "home"
	d.Label = &label
	for _, tc := range []struct {
		v    compat.Version
		want string
	}{{252, ""}, {253, ""}, {254, "home"}, {262, "home"}} {
		p := mustPlan(t, []repartd.Definition{d}, existing(tb, gib), Options{Compat: tc.v, Seed: seedA})
		r := p.Partitions[0]
		if r.Definition != nil || r.ListedLabel != tc.want || r.Label != "" || p.Changed() {
			t.Errorf("--compat=%d: definition %v, listed label %q (want %q), label %q, changed %v", tc.v, r.Definition, r.ListedLabel, tc.want, r.Label, p.Changed())
		}
	}
}
