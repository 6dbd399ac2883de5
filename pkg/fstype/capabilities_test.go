package fstype

import (
	"errors"
	"strings"
	"testing"
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
		err := Capabilities{PageSize: 4096}.Check(252, c.format, c.size)
		if (err == nil) != c.ok {
			t.Errorf("Check(%s, %d): %v, want ok=%v", c.format, c.size, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), c.format) {
			t.Errorf("Check(%s, %d): %q does not name the format", c.format, c.size, err)
		}
	}
}

// A probed system without a program refuses its formats, and only those;
// swap needs no program. Programs are looked up when asked about, once.
func TestProbeMissingProgram(t *testing.T) {
	var asked []string
	lookPath := func(p string) (string, error) {
		asked = append(asked, p)
		if p == "mkfs.ext4" {
			return "", errors.New("not found")
		}
		return "/sbin/" + p, nil
	}
	c := Probe(4096, lookPath)
	if len(asked) != 0 {
		t.Errorf("looked up %q before any Check", asked)
	}
	err := c.Check(252, "ext4", 1<<30)
	if err == nil || !strings.Contains(err.Error(), "mkfs.ext4") {
		t.Errorf("ext4 without mkfs.ext4: %v", err)
	}
	if err := c.Check(252, "xfs", 1<<30); err != nil {
		t.Errorf("xfs with mkfs.xfs: %v", err)
	}
	if err := c.Check(252, "swap", 1<<20); err != nil {
		t.Errorf("swap: %v", err)
	}
	if err := c.Check(252, "ext4", 1<<30); err == nil {
		t.Error("ext4 without mkfs.ext4, asked again: no error")
	}
	if strings.Join(asked, " ") != "mkfs.ext4 mkfs.xfs" {
		t.Errorf("looked up %q, want each program asked about once", asked)
	}
	// Not probed: every program counts as present.
	if err := (Capabilities{}).Check(252, "ext4", 1<<30); err != nil {
		t.Errorf("unprobed: %v", err)
	}
}
