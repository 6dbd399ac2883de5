package crash

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// region is a byte range of the disk.
type region struct {
	Name      string
	Off, Size int64
}

func (r region) End() int64 { return r.Off + r.Size }

func (r region) overlaps(w harness.DiskWrite) bool {
	return w.Offset < r.End() && r.Off < w.End()
}

// writesInto lists the writes that touch any of the regions.
func writesInto(writes []harness.DiskWrite, regions []region) []string {
	var out []string
	for _, w := range writes {
		for _, r := range regions {
			if r.overlaps(w) {
				out = append(out, fmt.Sprintf("%v writes into %s [%d, %d)", w, r.Name, r.Off, r.End()))
			}
		}
	}
	return out
}

// checkFS checks the file system on node: e2fsck -fn for ext4, fsck.vfat
// -n for vfat, and for swap the signature blkid finds. want holds the
// TYPE, UUID and LABEL it must have (nil: only the check).
func checkFS(ctx context.Context, node string, size int64, format string, want map[string]string) error {
	var argv []string
	switch format {
	case "ext4":
		argv = []string{"e2fsck", "-fn", node}
	case "vfat":
		argv = []string{"fsck.vfat", "-n", node}
	}
	if argv != nil {
		res, err := harness.Run(ctx, nil, argv...)
		if err != nil {
			return err
		}
		if res.ExitCode != 0 {
			return fmt.Errorf("%s: exit %d: %s", res.CommandLine(), res.ExitCode, lastLines(res.Stdout+res.Stderr, 6))
		}
	}
	got, err := harness.Probe(ctx, node, 0, size)
	if err != nil {
		return err
	}
	if got["TYPE"] != format {
		return fmt.Errorf("blkid finds TYPE=%q on %s, want %s", got["TYPE"], node, format)
	}
	for _, k := range []string{"TYPE", "UUID", "LABEL"} {
		if want != nil && got[k] != want[k] {
			return fmt.Errorf("blkid: %s=%q on %s, want %q", k, got[k], node, want[k])
		}
	}
	return nil
}

// checkFSInImage checks a file system at [off, off+size) of an image file
// through a read-only loop device of the given sector size.
func checkFSInImage(ctx context.Context, img string, off, size, ss int64, format string, want map[string]string) error {
	res, err := harness.MustSucceed(ctx, "losetup", "--find", "--show", "--read-only",
		"--offset", strconv.FormatInt(off, 10), "--sizelimit", strconv.FormatInt(size, 10),
		"--sector-size", strconv.FormatInt(ss, 10), img)
	if err != nil {
		return err
	}
	dev := strings.TrimSpace(res.Stdout)
	defer harness.Run(context.Background(), nil, "losetup", "--detach", dev)
	return checkFS(ctx, dev, size, format, want)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// sgdiskView is what sgdisk makes of a disk: the problems sgdisk -v
// reports (the first line of each "Problem:" paragraph) and the table it
// loads, as "number:first-last" per partition.
type sgdiskView struct {
	Problems []string
	Table    string
}

func sgdisk(ctx context.Context, dev string) (*sgdiskView, error) {
	res, err := harness.Run(ctx, nil, "sgdisk", "-p", "-v", dev)
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("%s: exit %d: %s", res.CommandLine(), res.ExitCode, lastLines(res.Stdout+res.Stderr, 6))
	}
	v := &sgdiskView{}
	var parts []string
	listed := false
	for _, para := range strings.Split(res.Stdout, "\n\n") {
		if p, ok := strings.CutPrefix(strings.Join(strings.Fields(para), " "), "Problem: "); ok {
			v.Problems = append(v.Problems, p)
		}
		lines := strings.Split(para, "\n")
		for i, line := range lines {
			if f := strings.Fields(line); !listed && len(f) > 0 && f[0] == "Number" {
				listed = true
				for _, l := range lines[i+1:] {
					if f := strings.Fields(l); len(f) >= 3 {
						parts = append(parts, f[0]+":"+f[1]+"-"+f[2])
					}
				}
				break
			}
		}
	}
	if !listed {
		return nil, fmt.Errorf("%s: no partition list:\n%s", res.CommandLine(), res.Stdout)
	}
	v.Table = strings.Join(parts, " ")
	return v, nil
}

// tableString renders an sfdisk table like sgdiskView.Table.
func tableString(t *harness.Table) string {
	var parts []string
	for _, p := range t.Partitions {
		parts = append(parts, fmt.Sprintf("%d:%d-%d", p.Entry, p.Start, p.Start+p.Size-1))
	}
	return strings.Join(parts, " ")
}
