package loop

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/pkg/blockdev/blockdevtest"
	"golang.org/x/sys/unix"
)

// At first boot the store is mounted (it is the running system) while
// sprout adds home and var; the ESP may be held open too.
func TestMountedStoreStaysUsableWhileHomeAndVarAreAdded(t *testing.T) {
	begin(t)
	for _, ss := range []int{512, 4096} {
		t.Run(fmt.Sprintf("%d-byte-sectors", ss), func(t *testing.T) {
			d := seedDisk(t, ss)
			d.addNodes(t) // this kernel has no GPT parser
			holdExclusive(t, d.node(1))
			dir, _ := mount(t, d.node(2))
			content := writeSynced(t, filepath.Join(dir, "before-run"))
			rdev := nodeNumbers(t, d, 1, 2)
			kernelBefore := d.kernelPartitions()
			events := blockdevtest.NewUeventMonitor(t)

			res := apply(t, d, "seed-defs")

			if b, err := os.ReadFile(filepath.Join(dir, "before-run")); err != nil || string(b) != content {
				t.Errorf("file on the mounted store after the run: %q, %v", b, err)
			}
			writeSynced(t, filepath.Join(dir, "after-run"))
			if !mountedAt(t, d.node(2), dir) {
				t.Errorf("%s is no longer mounted at %s", d.node(2), dir)
			}
			after := d.table(t)
			kernel := d.kernelPartitions()
			for _, n := range []int{1, 2} {
				if kernel[n] != kernelBefore[n] {
					t.Errorf("kernel's partition %d changed: %+v → %+v", n, kernelBefore[n], kernel[n])
				}
			}
			if got := nodeNumbers(t, d, 1, 2); got != rdev {
				t.Errorf("device numbers of partitions 1 and 2 changed: %v → %v", rdev, got)
			}
			for _, name := range []string{"home", "var"} {
				p := partitionByName(t, after, name)
				want := kernelPart{Start: int64(p.Start) * int64(ss) / 512, Size: int64(p.Size) * int64(ss) / 512}
				if k, ok := kernel[p.Entry]; !ok || k != want {
					t.Errorf("%s: sysfs has %+v (present %v), table says %+v\n%s", name, k, ok, want, res.Stderr)
				}
				mustRun(t, "e2fsck", "-f", "-n", d.node(p.Entry))
			}
			seen := events.Events()
			checkNoRemoveEvents(t, seen, d, 1, 2)
			// The monitor works: it saw the new partitions appear.
			for _, name := range []string{"home", "var"} {
				if !sawEvent(seen, "add", d.node(partitionByName(t, after, name).Entry)) {
					t.Errorf("no \"add\" uevent for %s's node", name)
				}
			}
		})
	}
}

// Growing a partition that is in use: the kernel's partition is resized in
// place (BLKPG resize), never removed and re-added, and the mount survives.
func TestMountedPartitionGrowsInPlaceThroughBLKPGResize(t *testing.T) {
	begin(t)
	for _, ss := range []int{512, 4096} {
		t.Run(fmt.Sprintf("%d-byte-sectors", ss), func(t *testing.T) {
			d := grownDisk(t, "grow", ss, 1<<30, attachOptions{})
			d.addNodes(t)
			before := d.table(t)
			home := partitionByName(t, before, "home")
			dir, _ := mount(t, d.node(home.Entry))
			content := writeSynced(t, filepath.Join(dir, "before-run"))
			rdev := nodeNumbers(t, d, home.Entry)
			events := blockdevtest.NewUeventMonitor(t)

			res := apply(t, d, "grow-defs")

			after := d.table(t)
			grown := partitionByName(t, after, "home")
			if grown.Entry != home.Entry || grown.Start != home.Start || grown.Size <= home.Size {
				t.Fatalf("home was not grown in place: %s → %s\n%s", home, grown, res.Stderr)
			}
			// It takes all the space after it, down to 4 KiB alignment.
			if end, usable := (grown.Start+grown.Size)*uint64(ss), (after.LastLBA+1)*uint64(ss); end != usable/4096*4096 {
				t.Errorf("home ends at byte %d, want the end of the usable area (%d) aligned down to 4096", end, usable)
			}
			want := kernelPart{Start: int64(grown.Start) * int64(ss) / 512, Size: int64(grown.Size) * int64(ss) / 512}
			if k := d.kernelPartitions()[grown.Entry]; k != want {
				t.Errorf("sysfs has %+v, table says %+v", k, want)
			}
			size := strings.TrimSpace(mustRun(t, "blockdev", "--getsize64", d.node(grown.Entry)))
			if size != strconv.FormatUint(grown.Size*uint64(ss), 10) {
				t.Errorf("%s is %s bytes, want %d", d.node(grown.Entry), size, grown.Size*uint64(ss))
			}
			if got := nodeNumbers(t, d, home.Entry); got != rdev {
				t.Errorf("device number of %s changed: %v → %v", d.node(home.Entry), rdev, got)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "before-run")); err != nil || string(b) != content {
				t.Errorf("file on the grown mounted partition: %q, %v", b, err)
			}
			writeSynced(t, filepath.Join(dir, "after-run"))
			if !mountedAt(t, d.node(home.Entry), dir) {
				t.Errorf("%s is no longer mounted at %s", d.node(home.Entry), dir)
			}
			checkNoRemoveEvents(t, events.Events(), d, home.Entry)

			res = apply(t, d, "grow-defs")
			if !strings.Contains(res.Stderr, "No changes.") {
				t.Errorf("second run does not say \"No changes.\":\n%s", res.Stderr)
			}
		})
	}
}

// writeSynced writes a file with unique content, fsyncs it, and returns
// the content.
func writeSynced(t *testing.T, path string) string {
	t.Helper()
	content := "written at " + path
	f, err := os.Create(path)
	if err == nil {
		_, err = f.WriteString(content)
	}
	if err == nil {
		err = f.Sync()
	}
	if f != nil {
		f.Close()
	}
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return content
}

// nodeNumbers returns the device numbers of partitions' nodes.
func nodeNumbers(t *testing.T, d *loopDisk, parts ...int) string {
	t.Helper()
	var s []string
	for _, n := range parts {
		var st unix.Stat_t
		if err := unix.Stat(d.node(n), &st); err != nil {
			t.Fatalf("stat %s: %v", d.node(n), err)
		}
		s = append(s, fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)))
	}
	return strings.Join(s, " ")
}

// mountedAt reports whether /proc/self/mountinfo lists node's device at dir.
func mountedAt(t *testing.T, node, dir string) bool {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(node, &st); err != nil {
		t.Fatalf("stat %s: %v", node, err)
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	dev := fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	for line := range strings.SplitSeq(string(info), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[2] == dev && f[4] == dir {
			return true
		}
	}
	return false
}

// sawEvent reports whether a uevent of the action concerned node.
func sawEvent(events []blockdevtest.Uevent, action, node string) bool {
	for _, ev := range events {
		if ev.Action == action && strings.HasSuffix(ev.DevPath, "/"+filepath.Base(node)) {
			return true
		}
	}
	return false
}

// checkNoRemoveEvents fails if the kernel sent a "remove" uevent for one
// of the partitions (its node went away, if only for a moment).
func checkNoRemoveEvents(t *testing.T, events []blockdevtest.Uevent, d *loopDisk, parts ...int) {
	t.Helper()
	for _, n := range parts {
		if sawEvent(events, "remove", d.node(n)) {
			t.Errorf("the kernel removed %s during the run (a \"remove\" uevent)", d.node(n))
		}
	}
}
