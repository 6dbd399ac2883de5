package crash

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// machine is the disk image attached as a disk: one boot of the device.
type machine struct {
	img  string
	loop *harness.Loop
}

// boot attaches img on a new loop device, as a disk appears at power-on,
// and lets the kernel learn its partitions from the table on the disk.
// partx -a stands in for the kernel's GPT parser, which this kernel lacks
// (libblkid reads the table the way the kernel does: the primary, else the
// backup in the last LBA). A disk on which it finds no table gets no
// partitions, as at a real boot.
func boot(ctx context.Context, img string, sectorSize int64) (*machine, error) {
	loop, err := harness.AttachLoop(ctx, img, sectorSize)
	if err != nil {
		return nil, err
	}
	m := &machine{img: img, loop: loop}
	parts, err := kernelPartitions(loop.Dev)
	if err == nil && len(parts) == 0 {
		_, err = harness.Run(ctx, nil, "partx", "-a", loop.Dev)
	}
	if err != nil {
		m.powerOff(context.Background())
		return nil, err
	}
	return m, nil
}

// powerOff detaches the disk. Loop devices that sprout attached over
// it for mkfs (LO_FLAGS_AUTOCLEAR, held by sprout and mkfs) go away when
// their last user is gone; one still attached a while after the run is
// reported. Detaching the disk's loop device writes its cached writes
// back into the image, which is then read directly.
func (m *machine) powerOff(ctx context.Context) error {
	var errs []error
	if left := waitLoopsGone(m.loop.Dev, 10*time.Second); len(left) > 0 {
		errs = append(errs, fmt.Errorf("loop devices over %s still attached after the run: %v", m.loop.Dev, left))
		for _, l := range left {
			harness.Run(ctx, nil, "losetup", "--detach", l)
		}
	}
	if err := m.loop.Detach(ctx); err != nil {
		errs = append(errs, err)
	}
	if left := waitLoopsGone(m.img, 10*time.Second); len(left) > 0 {
		errs = append(errs, fmt.Errorf("%s is still attached to %v", m.img, left))
	}
	return errors.Join(errs...)
}

// loopsBackedBy lists the loop devices whose backing file is path.
func loopsBackedBy(path string) []string {
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)") == path {
			out = append(out, "/dev/"+filepath.Base(filepath.Dir(filepath.Dir(f))))
		}
	}
	return out
}

func waitLoopsGone(backing string, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		left := loopsBackedBy(backing)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kernelPartition is a partition as the kernel knows it, in bytes.
type kernelPartition struct {
	Number      int
	Start, Size int64
}

func kernelPartitions(dev string) ([]kernelPartition, error) {
	name := filepath.Base(dev)
	dirs, err := filepath.Glob(filepath.Join("/sys/class/block", name, name+"p*"))
	if err != nil {
		return nil, err
	}
	var out []kernelPartition
	for _, d := range dirs {
		var v [3]int64
		for i, f := range []string{"partition", "start", "size"} {
			b, err := os.ReadFile(filepath.Join(d, f))
			if err != nil {
				return nil, fmt.Errorf("kernel partitions of %s: %w", dev, err)
			}
			if v[i], err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err != nil {
				return nil, fmt.Errorf("kernel partitions of %s: %s: %w", dev, f, err)
			}
		}
		out = append(out, kernelPartition{Number: int(v[0]), Start: v[1] * 512, Size: v[2] * 512})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}

// checkKernelView compares the kernel's partitions of dev with a table.
func checkKernelView(dev string, t *harness.Table) error {
	got, err := kernelPartitions(dev)
	if err != nil {
		return err
	}
	var want []kernelPartition
	for _, p := range t.Partitions {
		want = append(want, kernelPartition{Number: p.Entry, Start: p.StartBytes(t), Size: p.SizeBytes(t)})
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		return fmt.Errorf("the kernel's partitions of %s are %v, the table's %v", dev, got, want)
	}
	return nil
}
