package fstype

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/pkg/blockdev/blockdevtest"
	"github.com/sprout-initrd/sprout/tests/harness"
)

// The minimums hold for the installed tools: each formats a file of
// exactly its minimum size, and mkfs.xfs really refuses one sector less.
func TestMinimumSizesAgainstTools(t *testing.T) {
	cases := []struct {
		format string
		size   int64
		ok     bool
	}{
		{"ext2", minSize(t, "ext2"), true},
		{"ext4", minSize(t, "ext4"), true},
		{"vfat", minSize(t, "vfat"), true},
		{"xfs", minSize(t, "xfs"), true},
		{"xfs", minSize(t, "xfs") - 4096, false},
	}
	for _, c := range cases {
		f, _ := Lookup(c.format)
		harness.RequireTools(t, f.Program)
		path := filepath.Join(t.TempDir(), "fs.img")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, c.size); err != nil {
			t.Fatal(err)
		}
		args := f.Args(Request{Format: c.format, Label: "min", UUID: testRequest.UUID}, path)
		if c.format != "vfat" && c.format != "xfs" {
			args = append(args[:len(args)-1], "-F", path) // mke2fs asks before formatting a regular file
		}
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if (err == nil) != c.ok {
			t.Errorf("%s on %d bytes: %v %s, want success=%v", c.format, c.size, err, out, c.ok)
		}
		if err == nil {
			if got := strings.TrimSpace(blockdevtest.Run(t, "blkid", "-p", "-o", "value", "-s", "TYPE", path)); got != c.format {
				t.Errorf("%s on %d bytes: blkid finds %q", c.format, c.size, got)
			}
		}
		if err == nil && (Capabilities{}).Check(252, c.format, c.size) != nil {
			t.Errorf("%s formats %d bytes but the declaration refuses it", c.format, c.size)
		}
	}
}

func minSize(t *testing.T, format string) int64 {
	f, ok := Lookup(format)
	if !ok {
		t.Fatalf("%s is not declared", format)
	}
	return f.MinSize(252, 4096)
}
