package mkfs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/disk/disktest"
)

func TestCheckSize(t *testing.T) {
	cases := []struct {
		format string
		size   int64
		ok     bool
	}{
		{"swap", 40 << 10, true},
		{"swap", 36 << 10, false},
		{"swap", 4096, false},
		{"xfs", 300 << 20, true},
		{"xfs", 300<<20 - 4096, false},
		{"vfat", 1 << 20, true},
		{"vfat", 512 << 10, false},
		{"ext2", 1 << 20, true},
		{"ext3", 4096, false},
		{"ext4", 1<<20 - 4096, false},
		{"btrfs", 4096, true}, // left to the planner's minimum
	}
	for _, c := range cases {
		err := CheckSize(c.format, c.size, 4096)
		if (err == nil) != c.ok {
			t.Errorf("CheckSize(%s, %d): %v, want ok=%v", c.format, c.size, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), c.format) {
			t.Errorf("CheckSize(%s, %d): %q does not name the format", c.format, c.size, err)
		}
	}
}

// The minimums hold for the installed tools: each formats a file of
// exactly its minimum size, and mkfs.xfs really refuses one sector less.
func TestMinimumSizesAgainstTools(t *testing.T) {
	cases := []struct {
		format string
		size   int64
		ok     bool
	}{
		{"ext2", extMinSize, true},
		{"ext4", extMinSize, true},
		{"vfat", vfatMinSize, true},
		{"xfs", xfsMinSize, true},
		{"xfs", xfsMinSize - 4096, false},
	}
	for _, c := range cases {
		disktest.RequireTool(t, Program(c.format))
		path := filepath.Join(t.TempDir(), "fs.img")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, c.size); err != nil {
			t.Fatal(err)
		}
		args, err := Args(Request{Format: c.format, Label: "min", UUID: uuid.MustParse("0123456789abcdef0123456789abcdef")}, path)
		if err != nil {
			t.Fatal(err)
		}
		if c.format != "vfat" && c.format != "xfs" {
			args = append(args[:len(args)-1], "-F", path) // mke2fs asks before formatting a regular file
		}
		err = Run(context.Background(), args)
		if (err == nil) != c.ok {
			t.Errorf("%s on %d bytes: %v, want success=%v", c.format, c.size, err, c.ok)
		}
		if err == nil {
			if got := strings.TrimSpace(disktest.Run(t, "blkid", "-p", "-o", "value", "-s", "TYPE", path)); got != c.format {
				t.Errorf("%s on %d bytes: blkid finds %q", c.format, c.size, got)
			}
		}
		if err == nil && CheckSize(c.format, c.size, 4096) != nil {
			t.Errorf("%s formats %d bytes but CheckSize refuses it", c.format, c.size)
		}
	}
}
