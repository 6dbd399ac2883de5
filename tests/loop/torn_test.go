package loop

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/pkg/gpt"
	"github.com/sprout-initrd/sprout/tests/harness"
)

// A power cut while the primary GPT is written leaves a valid backup and a
// damaged primary; Linux then shows no partitions at all, so udev makes no
// /dev/disk/by-partlabel links and the root cannot be mounted. The next
// sprout run must repair the primary and tell the kernel about every
// partition of the table, not only about new ones (there are none).
func TestTornPrimaryIsRepairedAndTheKernelLearnsEveryPartition(t *testing.T) {
	begin(t)
	for _, ss := range []int{512, 4096} {
		t.Run(fmt.Sprintf("%d-byte-sectors", ss), func(t *testing.T) {
			d := seedDisk(t, ss)
			apply(t, d, "seed-defs")
			table := d.table(t)
			if len(table.Partitions) != 4 {
				t.Fatalf("first run: want 4 partitions, got\n%s", table)
			}

			// The kernel as it is after booting such a disk: no partitions.
			for n := range d.kernelPartitions() {
				mustRun(t, "delpart", d.Dev, strconv.Itoa(n))
			}
			tearPrimaryHeader(t, d.Dev, ss)
			if got := readGPT(t, d, ss).PrimaryInvalid; got == "" {
				t.Fatal("the torn primary still reads as valid")
			}
			if k := d.kernelPartitions(); len(k) != 0 {
				t.Fatalf("kernel still has partitions %v", k)
			}

			res := apply(t, d, "seed-defs")
			if !strings.Contains(res.Stderr, "Repairing the partition table of "+d.Dev+": the primary GPT is damaged") {
				t.Errorf("the run does not say it repairs the primary GPT:\n%s", res.Stderr)
			}
			if got := readGPT(t, d, ss); got.PrimaryInvalid != "" || got.BackupInvalid != "" {
				t.Errorf("after the repair: primary %q, backup %q", got.PrimaryInvalid, got.BackupInvalid)
			}
			after := d.table(t)
			if after.String() != table.String() {
				t.Errorf("the repaired table differs from the first run's:\n%s\nwant\n%s", after, table)
			}
			kernel := d.kernelPartitions()
			for _, p := range after.Partitions {
				want := kernelPart{Start: int64(p.Start) * int64(ss) / 512, Size: int64(p.Size) * int64(ss) / 512}
				if k, ok := kernel[p.Entry]; !ok || k != want {
					t.Errorf("partition %d (%s): sysfs has %+v (present %v), table says %+v", p.Entry, p.Name, k, ok, want)
				}
			}
			if len(kernel) != len(after.Partitions) {
				t.Errorf("kernel has %d partitions, table %d", len(kernel), len(after.Partitions))
			}
			// And the next run has nothing to do.
			if res := apply(t, d, "seed-defs"); !strings.Contains(res.Stderr, "No changes.") {
				t.Errorf("the run after the repair does not say \"No changes.\":\n%s", res.Stderr)
			}
		})
	}
}

// tearPrimaryHeader flips a byte of the primary GPT header's CRC32 on the
// device, as a torn write of that sector would leave it.
func tearPrimaryHeader(t *testing.T, dev string, ss int) {
	t.Helper()
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	off := int64(ss) + 16 // header CRC32 at byte 16 of LBA 1
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "blockdev", "--flushbufs", dev)
}

// readGPT reads the device's table with sprout's own reader.
func readGPT(t *testing.T, d *loopDisk, ss int) *gpt.Table {
	t.Helper()
	f, err := os.Open(d.Dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, err := harness.MustSucceed(context.Background(), "blockdev", "--getsize64", d.Dev)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(size.Stdout), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := gpt.Read(f, n, ss)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}
