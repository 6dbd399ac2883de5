package plan

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/repartd"
)

// selectionDefs and selectionDisk are the case the vectors below come
// from, run through systemd-repart 262 (forky): a 2 GiB disk with a
// 100 MiB ESP and a 200 MiB root; definitions esp, root, home (ext4,
// weight 2000), var (ext4) and a 64 MiB swap.
func selectionDefs(t *testing.T) []repartd.Definition {
	return []repartd.Definition{
		def(t, "10-esp", "esp"),
		def(t, "20-root", "root"),
		def(t, "30-home", "home", "Format=ext4", "Weight=2000"),
		def(t, "40-var", "var", "Format=ext4"),
		def(t, "50-swap", "swap", "Format=swap", "SizeMin=67108864", "SizeMax=67108864"),
	}
}

func selectionDisk(t *testing.T) Snapshot {
	return existing(table(t, 2*gib, 2048, "1:esp:2048:204800", "2:root:206848:409600"), 2*gib)
}

// created lists the entries the plan adds ("add name@index:start+sectors")
// and grows ("grow index:sectors").
func created(p *Plan) string {
	var parts []string
	for _, s := range p.Steps {
		switch s := s.(type) {
		case AddEntry:
			e := s.Entry
			parts = append(parts, fmt.Sprintf("add %s@%d:%d+%d", e.Name, e.Index, e.FirstLBA, e.LastLBA-e.FirstLBA+1))
		case GrowEntry:
			parts = append(parts, fmt.Sprintf("grow %d:%d", s.Index, s.NewSize/512))
		}
	}
	return strings.Join(parts, " ")
}

func TestSelection(t *testing.T) {
	home, root, v := typ(t, "home"), typ(t, "root"), typ(t, "var")
	for _, c := range []struct {
		name string
		sel  Selection
		want string
	}{
		{"none", Selection{},
			"grow 2:964080 add home@3:1170928+1928176 add var@4:3099104+964088 add swap@5:4063192+131072"},
		{"exclude home", Selection{Exclude: []uuid.UUID{home}},
			"grow 2:1928168 add var@3:2135016+1928176 add swap@4:4063192+131072"},
		{"include home,var", Selection{Include: []uuid.UUID{home, v}},
			"add home@3:616448+2385208 add var@4:3001656+1192608"},
		{"defer home", Selection{Defer: []uuid.UUID{home}},
			"grow 2:964080 add var@4:3099104+964088 add swap@5:4063192+131072"},
		{"exclude root", Selection{Exclude: []uuid.UUID{root}},
			"add home@3:616448+2297824 add var@4:2914272+1148920 add swap@5:4063192+131072"},
		{"include root", Selection{Include: []uuid.UUID{root}}, "grow 2:3987416"},
		{"defer root", Selection{Defer: []uuid.UUID{root}},
			"add home@3:1170928+1928176 add var@4:3099104+964088 add swap@5:4063192+131072"},
		{"defer var, exclude home", Selection{Defer: []uuid.UUID{v}, Exclude: []uuid.UUID{home}},
			"grow 2:1928168 add swap@4:4063192+131072"},
		{"defer and include home", Selection{Defer: []uuid.UUID{home}, Include: []uuid.UUID{home}}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := mustPlan(t, selectionDefs(t), selectionDisk(t), Options{Seed: seedB, Selection: c.sel})
			if got := created(p); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
			for _, r := range p.Partitions {
				if r.Deferred {
					for _, s := range p.Steps {
						if w, ok := s.(WipeRange); ok && w.Index == r.Index {
							t.Errorf("deferred partition %d is wiped", r.Index)
						}
					}
				}
			}
		})
	}
}

func TestDeferEmptyAndFactoryReset(t *testing.T) {
	empty := "_empty"
	defs := selectionDefs(t)
	defs[2].FactoryReset = true // home
	defs[3].Label = &empty      // var
	p := mustPlan(t, defs, selectionDisk(t), Options{Seed: seedB, Selection: Selection{DeferEmpty: true}})
	if got, want := created(p), "grow 2:964080 add home@3:1170928+1928176 add swap@5:4063192+131072"; got != want {
		t.Errorf("defer empty: got %s, want %s", got, want)
	}
	p = mustPlan(t, defs, selectionDisk(t), Options{Seed: seedB, Selection: Selection{DeferFactoryReset: true, DeferEmpty: true}})
	if got, want := created(p), "grow 2:964080 add swap@5:4063192+131072"; got != want {
		t.Errorf("defer both: got %s, want %s", got, want)
	}
}

// A new partition is refused when it would need content or a file system
// sprout cannot make; the same definition on an existing partition, or a
// dropped or deferred one, is fine.
func TestCheckCreatable(t *testing.T) {
	withKey := func(d repartd.Definition, k repartd.ImageKey) repartd.Definition {
		d.ImageKeys = append(d.ImageKeys, k)
		return d
	}
	copyFiles := repartd.ImageKey{Key: "CopyFiles", Value: "/usr", Where: "/defs/x.conf:4", Fills: true}
	compression := repartd.ImageKey{Key: "Compression", Value: "zstd", Where: "/defs/x.conf:5"}

	defs := selectionDefs(t)
	defs[1] = withKey(defs[1], copyFiles) // root exists: no effect
	defs[2] = withKey(defs[2], compression)
	mustPlan(t, defs, selectionDisk(t), Options{Seed: seedB})

	defs[3] = withKey(defs[3], copyFiles) // var is new
	_, err := Make(defs, selectionDisk(t), Options{Seed: seedB})
	if err == nil || !strings.HasPrefix(err.Error(), "/defs/x.conf:4: CopyFiles=/usr would fill the new partition of 40-var.conf") {
		t.Errorf("CopyFiles on a new partition: %v", err)
	}
	mustPlan(t, defs, selectionDisk(t), Options{Seed: seedB, Selection: Selection{Defer: []uuid.UUID{typ(t, "var")}}})

	defs = selectionDefs(t)
	defs[3].Format = "squashfs"
	defs[3].Lines = map[string]string{"Format": "/defs/40-var.conf:3"}
	if _, err := Make(defs, selectionDisk(t), Options{Seed: seedB}); err == nil || !strings.HasPrefix(err.Error(), `/defs/40-var.conf:3: sprout cannot make a "squashfs" file system`) {
		t.Errorf("squashfs: %v", err)
	}
	defs[1].Format = "squashfs" // on the existing root: no effect
	defs[3].Format = "ext4"
	mustPlan(t, defs, selectionDisk(t), Options{Seed: seedB})

	defs = selectionDefs(t)
	defs[2].Format, defs[2].DefaultSubvolume = "btrfs", "/@home"
	defs[2].Subvolumes = []repartd.Subvolume{{Path: "/@home"}}
	if _, err := Make(defs, selectionDisk(t), Options{Seed: seedB}); err == nil || !strings.Contains(err.Error(), "DefaultSubvolume=/@home names a subvolume") {
		t.Errorf("DefaultSubvolume: %v", err)
	}
	defs[2].DefaultSubvolume = "/"
	mustPlan(t, defs, selectionDisk(t), Options{Seed: seedB})
}

// Format=empty makes no file system; the label and NoAuto come from the
// definition (spec applies them), the type decides whether bit 63 is
// written (262: srv and home yes, linux-generic no).
func TestFormatEmptyPartition(t *testing.T) {
	empty := "_empty"
	d := def(t, "70-home", "home", "SizeMin=104857600", "SizeMax=104857600")
	d.Empty, d.Label, d.NoAuto = true, &empty, repartd.TriYes
	p := mustPlan(t, []repartd.Definition{d}, selectionDisk(t), Options{Seed: seedB})
	for _, s := range p.Steps {
		switch s := s.(type) {
		case FormatPartition, EncryptPartition:
			t.Errorf("Format=empty formats: %s", s.Describe())
		case AddEntry:
			if s.Entry.Name != "_empty" || s.Entry.Attributes != AttrNoAuto|AttrGrowFileSystem {
				t.Errorf("entry %q attributes %#x", s.Entry.Name, s.Entry.Attributes)
			}
		}
	}
}

func TestVolumeLabel(t *testing.T) {
	label := "myvol"
	d := def(t, "10-data", "linux-generic", "Label=data")
	for _, c := range []struct {
		compat compat.Version
		vol    *string
		want   string
	}{
		{262, nil, "luks-data"}, {259, nil, "luks-data"},
		{258, nil, "data"}, {252, nil, "data"}, {262, &label, "myvol"}, {252, &label, "myvol"},
	} {
		d.VolumeLabel = c.vol
		if got := volumeLabel(&d, "data", c.compat); got != c.want {
			t.Errorf("compat %d VolumeLabel %v: got %q, want %q", c.compat, c.vol, got, c.want)
		}
	}
}
