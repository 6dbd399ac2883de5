package loop

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// Every refusal names the problem and leaves every byte of the device as
// it was: the whole device is hashed before and after.

func TestRefusesReadOnlyDeviceLeavingItByteIdentical(t *testing.T) {
	begin(t)
	d := grownDisk(t, "seed", 512, tenGiB, attachOptions{ReadOnly: true})
	before := d.hash(t)
	refused(t, d.Dev, "seed-defs", "read-only", d.Dev)
	if d.hash(t) != before {
		t.Errorf("the refused run changed %s", d.Dev)
	}
	// Looking is still allowed: a dry run on a read-only disk shows the plan.
	if res := sprout(t, "--seed="+seed, "--definitions="+testdata(t, "seed-defs"), d.Dev); res.ExitCode != 0 {
		t.Errorf("dry run on a read-only disk: exit %d\n%s", res.ExitCode, res.Stderr)
	}
}

func TestRefusesPartitionNodeInsteadOfDiskLeavingDiskByteIdentical(t *testing.T) {
	begin(t)
	d := seedDisk(t, 512)
	d.addNodes(t)
	before := d.hash(t)
	refused(t, d.node(1), "seed-defs", fmt.Sprintf("is partition 1 of %s; pass the whole disk", d.Dev))
	if d.hash(t) != before {
		t.Errorf("the refused run changed %s", d.Dev)
	}
}

// An image written to a disk smaller than the image: the backup GPT and
// the end of the last partition are missing.
func TestRefusesDiskSmallerThanItsGPTLeavingItByteIdentical(t *testing.T) {
	begin(t)
	t.Run("seed-image-545MiB-on-400MiB-disk", func(t *testing.T) {
		img := filepath.Join(t.TempDir(), "small.img")
		if err := harness.CopySparse(baseImage(t, "seed", 512), img); err != nil {
			t.Fatal(err)
		}
		if err := harness.Resize(img, 400*mib); err != nil {
			t.Fatal(err)
		}
		d := attach(t, img, 512, attachOptions{})
		before := d.hash(t)
		refused(t, d.Dev, "seed-defs", "the disk is smaller than the GPT claims")
		if d.hash(t) != before {
			t.Errorf("the refused run changed %s", d.Dev)
		}
	})
	t.Run("first-booted-10GiB-image-on-4GiB-disk", func(t *testing.T) {
		booted := seedDisk(t, 4096)
		apply(t, booted, "seed-defs")
		mustRun(t, "blockdev", "--flushbufs", booted.Dev)
		img := filepath.Join(t.TempDir(), "small.img")
		if err := harness.CopySparse(booted.Backing, img); err != nil {
			t.Fatal(err)
		}
		if err := harness.Resize(img, 4<<30); err != nil {
			t.Fatal(err)
		}
		d := attach(t, img, 4096, attachOptions{})
		before := d.hash(t)
		refused(t, d.Dev, "seed-defs", "the disk is smaller than the GPT claims")
		if d.hash(t) != before {
			t.Errorf("the refused run changed %s", d.Dev)
		}
	})
}

// The kernel cannot follow the new table without disturbing a partition in
// use: a stale kernel partition (made with BLKPG, as another tool or an
// interrupted run could leave it) is mounted or held open where a new
// partition goes. sprout must notice before it writes anything.
func TestRefusesWhenKernelCannotFollowBecauseAPartitionInUseIsInTheWay(t *testing.T) {
	begin(t, "addpart", "resizepart")
	cases := []struct {
		name string
		// setup makes the stale kernel partition and puts it in use; home
		// is the planned byte range of the new home partition.
		setup func(t *testing.T, d *loopDisk, home plannedRow)
		want  func(d *loopDisk) []string
	}{{
		name: "held-open-partition-9-covers-new-home",
		setup: func(t *testing.T, d *loopDisk, home plannedRow) {
			addpart(t, d, 9, home.Offset+mib, 64*mib)
			holdExclusive(t, d.node(9))
		},
		want: func(d *loopDisk) []string { return []string{"partition 9 (" + d.node(9) + ") is in use"} },
	}, {
		name: "mounted-partition-3-where-new-home-starts",
		setup: func(t *testing.T, d *loopDisk, home plannedRow) {
			addpart(t, d, 3, home.Offset, 64*mib)
			mustRun(t, "mkfs.ext4", "-q", d.node(3))
			mount(t, d.node(3), "ro")
		},
		want: func(d *loopDisk) []string { return []string{d.node(3), "in use"} },
	}, {
		name: "mounted-store-partition-2-enlarged-into-new-home",
		setup: func(t *testing.T, d *loopDisk, home plannedRow) {
			store := d.kernelPartitions()[2]
			mustRun(t, "resizepart", d.Dev, "2", strconv.FormatInt(store.Size+64*mib/512, 10))
			mount(t, d.node(2), "ro")
		},
		want: func(d *loopDisk) []string {
			return []string{"the kernel has partition 2", "overlapping partition 3"}
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := seedDisk(t, 512)
			d.addNodes(t)
			home := planned(t, d, "seed-defs")["home"]
			if home.Activity != "create" || home.RawSize == 0 {
				t.Fatalf("dry run does not plan a new home: %+v", home)
			}
			c.setup(t, d, home)
			kernel := d.kernelPartitions()
			before := d.hash(t)

			refused(t, d.Dev, "seed-defs", append(c.want(d), "nothing was written")...)

			if d.hash(t) != before {
				t.Errorf("the refused run changed %s", d.Dev)
			}
			if after := d.kernelPartitions(); !reflect.DeepEqual(after, kernel) {
				t.Errorf("the refused run changed the kernel's partitions: %v → %v", kernel, after)
			}
		})
	}
}

// A stale kernel partition nobody uses is no reason to refuse: the
// kernel's view is brought in line with the new table.
func TestStaleUnusedKernelPartitionIsReplacedByTheNewTable(t *testing.T) {
	begin(t, "addpart")
	d := seedDisk(t, 512)
	d.addNodes(t)
	home := planned(t, d, "seed-defs")["home"]
	addpart(t, d, 9, home.Offset+mib, 64*mib)
	addpart(t, d, 3, home.Offset+128*mib, 64*mib) // the new home's number, another start

	apply(t, d, "seed-defs")

	tb := d.table(t)
	kernel := d.kernelPartitions()
	if _, ok := kernel[9]; ok {
		t.Errorf("stale partition 9 is still in the kernel: %v", kernel)
	}
	if len(kernel) != len(tb.Partitions) {
		t.Errorf("kernel has %d partitions, table %d: %v", len(kernel), len(tb.Partitions), kernel)
	}
	for _, p := range tb.Partitions {
		want := kernelPart{Start: int64(p.Start), Size: int64(p.Size)}
		if kernel[p.Entry] != want {
			t.Errorf("partition %d: kernel has %+v, table %+v", p.Entry, kernel[p.Entry], want)
		}
	}
}

// addpart adds kernel partition n at [start, start+size) bytes with BLKPG.
func addpart(t *testing.T, d *loopDisk, n int, start, size int64) {
	t.Helper()
	mustRun(t, "addpart", d.Dev, strconv.Itoa(n), strconv.FormatInt(start/512, 10), strconv.FormatInt(size/512, 10))
}

// Growing a mounted partition needs the kernel to resize it in place. Here
// the kernel cannot: a partition in use (a stale one, held open) sits in
// the space home would grow into. sprout refuses before writing, and the
// mounted home keeps its size in the kernel.
//
// (The other way the kernel could refuse — rejecting a resize of an in-use
// partition outright, which preflight probes with a same-size resize — does
// not happen on the kernels this runs on, so it has no test here.)
func TestRefusesToGrowMountedPartitionWhenKernelCannotFollow(t *testing.T) {
	begin(t, "addpart")
	d := grownDisk(t, "grow", 512, 1<<30, attachOptions{})
	d.addNodes(t)
	home := partitionByName(t, d.table(t), "home")
	mount(t, d.node(home.Entry), "ro")
	end := int64(home.Start+home.Size) * 512
	addpart(t, d, 9, end+64*mib, 64*mib)
	holdExclusive(t, d.node(9))
	kernel := d.kernelPartitions()
	before := d.hash(t)

	refused(t, d.Dev, "grow-defs", "partition 9 ("+d.node(9)+") is in use", "nothing was written")

	if d.hash(t) != before {
		t.Errorf("the refused run changed %s", d.Dev)
	}
	if after := d.kernelPartitions(); !reflect.DeepEqual(after, kernel) {
		t.Errorf("the refused run changed the kernel's partitions: %v → %v", kernel, after)
	}
}
