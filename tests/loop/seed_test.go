package loop

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/tests/harness"
	"golang.org/x/sys/unix"
)

// The seed scenario: an appliance image (ESP + store) dd'ed onto a disk
// 10 GiB bigger; the first boot adds home and var (ext4, weights 2000:1000).

func TestSeedScenarioAddsHomeAndVarThroughBLKPGOnEverySectorSize(t *testing.T) {
	begin(t)
	for _, ss := range sectorSizes {
		t.Run(fmt.Sprintf("%d-byte-sectors", ss), func(t *testing.T) { seedScenario(t, ss) })
	}
}

func seedScenario(t *testing.T, ss int) {
	d := seedDisk(t, ss)
	before := d.table(t)
	if len(before.Partitions) != 2 {
		t.Fatalf("base image: want ESP + store, got\n%s", before)
	}
	oldHash := map[string]string{}
	for _, p := range before.Partitions {
		oldHash[p.Name] = d.rangeHash(t, before, p)
	}

	apply(t, d, "seed-defs")

	after := d.table(t)
	if after.SectorSize != uint64(ss) {
		t.Fatalf("sfdisk reads %d-byte sectors, want %d", after.SectorSize, ss)
	}
	if len(after.Partitions) != 4 {
		t.Fatalf("want 4 partitions after the run, got\n%s", after)
	}

	// The existing partitions: same entries, and not one byte written.
	for _, p := range before.Partitions {
		q := partitionByName(t, after, p.Name)
		if q.Entry != p.Entry || q.Start != p.Start || q.Size != p.Size || q.UUID != p.UUID || q.Type != p.Type {
			t.Errorf("existing partition changed: %s → %s", p, q)
		}
		if h := d.rangeHash(t, after, q); h != oldHash[p.Name] {
			t.Errorf("bytes of existing partition %q changed", p.Name)
		}
	}

	// The kernel's view is the table, for every partition (sprout adds the
	// ones the kernel does not know); sysfs counts 512-byte units.
	kernel := d.kernelPartitions()
	for _, p := range after.Partitions {
		k, ok := kernel[p.Entry]
		want := kernelPart{Start: int64(p.Start) * int64(ss) / 512, Size: int64(p.Size) * int64(ss) / 512}
		if !ok || k != want {
			t.Errorf("partition %d (%s): sysfs has %+v (present %v), table says %+v", p.Entry, p.Name, k, ok, want)
		}
	}

	home, vr := partitionByName(t, after, "home"), partitionByName(t, after, "var")
	if r := float64(home.Size) / float64(vr.Size); math.Abs(r-2) > 0.02 {
		t.Errorf("home:var = %d:%d = %.3f, want 2 (weights 2000:1000)", home.Size, vr.Size, r)
	}
	for _, c := range []struct {
		p        harness.Partition
		typeName string
	}{{home, "home"}, {vr, "var"}} {
		checkNewPartition(t, d, c.p, c.typeName)
	}

	// A second run writes nothing.
	hash := d.hash(t)
	res := apply(t, d, "seed-defs")
	if !strings.Contains(res.Stderr, "No changes.") {
		t.Errorf("second run does not say \"No changes.\":\n%s", res.Stderr)
	}
	if d.hash(t) != hash {
		t.Errorf("second run changed bytes of %s", d.Dev)
	}
}

// checkNewPartition checks a partition sprout added: its node, derived
// identities, a clean ext4 that mounts and takes a file.
func checkNewPartition(t *testing.T, d *loopDisk, p harness.Partition, typeName string) {
	t.Helper()
	node := d.node(p.Entry)
	var st unix.Stat_t
	if err := unix.Stat(node, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		t.Errorf("%s: no block device node (%v)", node, err)
		return
	}
	want := derive(t, typeName)
	if !strings.EqualFold(p.UUID, want.PartUUID.String()) {
		t.Errorf("%s: partition UUID %s, derived %s", node, p.UUID, want.PartUUID)
	}
	if p.Attrs != "GUID:59" {
		t.Errorf("%s: attributes %q, want GUID:59 (grow-file-system)", node, p.Attrs)
	}
	mustRun(t, "e2fsck", "-f", "-n", node)
	got := probe(t, node)
	for k, v := range map[string]string{
		"TYPE": "ext4", "LABEL": typeName, "UUID": want.FSUUID.String(),
		"PART_ENTRY_NAME": typeName, "PART_ENTRY_UUID": want.PartUUID.String(),
	} {
		if !strings.EqualFold(got[k], v) {
			t.Errorf("%s: blkid %s=%q, want %q", node, k, got[k], v)
		}
	}
	dir, unmount := mount(t, node)
	file := filepath.Join(dir, "written-by-test")
	if err := os.WriteFile(file, []byte(node), 0o644); err != nil {
		t.Errorf("%s mounted, but a write fails: %v", node, err)
	} else if b, err := os.ReadFile(file); err != nil || string(b) != node {
		t.Errorf("%s: read back %q, %v", node, b, err)
	}
	unmount()
	mustRun(t, "e2fsck", "-f", "-n", node)
}

// Both tools start from the same bytes; the tables must be the same bytes
// as far as sfdisk can tell, and so must the kernel's view and the new
// file systems' identities.
func TestSeedScenarioTableEqualsSystemdRepart252(t *testing.T) {
	begin(t)
	for _, ss := range sectorSizes {
		t.Run(fmt.Sprintf("%d-byte-sectors", ss), func(t *testing.T) {
			ours := seedDisk(t, ss)
			// -P: with partition scanning 252 tells the kernel through BLKPG.
			theirs := grownDisk(t, "seed", ss, tenGiB, attachOptions{PartScan: true})

			apply(t, ours, "seed-defs")
			res, err := harness.MustSucceed(context.Background(), append([]string{harness.HostRepart}, sproutArgs(t, theirs, "seed-defs")...)...)
			if err != nil {
				t.Fatalf("systemd-repart: %v", err)
			}
			want, got := theirs.table(t), ours.table(t)
			if diff := harness.Diff(want, got); len(diff) > 0 {
				t.Fatalf("tables differ (want = systemd-repart 252):\n%s\nwant:\n%sgot:\n%s", strings.Join(diff, "\n"), want, got)
			}
			ko, kt := ours.kernelPartitions(), theirs.kernelPartitions()
			for _, name := range []string{"home", "var"} {
				n := partitionByName(t, want, name).Entry
				o, okO := ko[n]
				th, okT := kt[n]
				if !okO || !okT || o != th {
					t.Errorf("partition %d (%s): kernel has %+v (present %v) from sprout, %+v (present %v) from systemd-repart\n%s",
						n, name, o, okO, th, okT, res.Stderr)
				}
				po, pt := probe(t, ours.node(n)), probe(t, theirs.node(n))
				for _, k := range []string{"TYPE", "LABEL", "UUID"} {
					if po[k] != pt[k] {
						t.Errorf("partition %d (%s): blkid %s=%q from sprout, %q from systemd-repart", n, name, k, po[k], pt[k])
					}
				}
			}
		})
	}
}
