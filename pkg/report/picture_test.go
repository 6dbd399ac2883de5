package report

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/plan"
	"github.com/sprout-initrd/sprout/pkg/repartd"
)

// pictureCase is one file of testdata/picture: a layout, a width, and the
// picture systemd-repart 262 drew for it (each file says how it was
// recorded). ESC is written "^[" there. The "case" line says how
// tests/differential rebuilds the disk to draw it again with the real
// programs (picture_test.go there).
type pictureCase struct {
	disk    uint64
	opt     PictureOptions
	slices  []Slice
	picture string
}

func readPictureCase(path string) (pictureCase, error) {
	var c pictureCase
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	head, pic, ok := strings.Cut(string(b), "-- picture --\n")
	if !ok {
		return c, fmt.Errorf("%s: no \"-- picture --\" line", path)
	}
	c.picture = strings.ReplaceAll(pic, "^[", "\x1b")
	for n, line := range strings.Split(head, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		bad := fmt.Errorf("%s:%d: cannot read %q", path, n+1, line)
		switch {
		case f[0] == "case":
		case f[0] == "disk" && len(f) == 2:
			if c.disk, err = strconv.ParseUint(f[1], 10, 64); err != nil {
				return c, bad
			}
		case f[0] == "width" && len(f) == 2:
			if c.opt.Width, err = strconv.Atoi(f[1]); err != nil {
				return c, bad
			}
		case f[0] == "color" && len(f) == 2:
			c.opt.Color = f[1] == "yes"
		case f[0] == "slice" && len(f) == 4:
			off, err1 := strconv.ParseUint(f[1], 10, 64)
			size, err2 := strconv.ParseUint(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				return c, bad
			}
			c.slices = append(c.slices, Slice{Offset: off, Size: size, Name: f[3]})
		default:
			return c, bad
		}
	}
	if c.disk == 0 || c.opt.Width == 0 {
		return c, fmt.Errorf("%s: no disk or width line", path)
	}
	return c, nil
}

// TestPictureAsSystemdRepart262 draws each recorded layout and compares it
// with 262's picture byte for byte (trailing spaces and colour codes too).
func TestPictureAsSystemdRepart262(t *testing.T) {
	files, err := filepath.Glob("testdata/picture/*.txt")
	if err != nil || len(files) < 10 {
		t.Fatalf("want the recorded pictures in testdata/picture, found %d (%v)", len(files), err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			c, err := readPictureCase(f)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := Picture(&out, c.disk, c.slices, c.opt); err != nil {
				t.Fatal(err)
			}
			// systemd-repart frames the picture with empty lines.
			want := "\n" + c.picture + "\n"
			if out.String() != want {
				t.Errorf("picture differs from systemd-repart 262's\n got:\n%s\nwant:\n%s", out.String(), want)
			}
		})
	}
}

// The tree lists the slices in the order given (252 and 257 list their
// table's order, definitions first); the bar is always the disk's order.
func TestPictureTreeFollowsGivenOrder(t *testing.T) {
	const disk = 10000 * 512
	slices := []Slice{
		{Offset: 6000 * 512, Size: 1000 * 512, Name: "home.conf"},
		{Offset: 40 * 512, Size: 1000 * 512, Name: "boot"},
	}
	var out bytes.Buffer
	if err := Picture(&out, disk, slices, PictureOptions{Width: 22}); err != nil {
		t.Fatal(err)
	}
	want := "\n" +
		" ▒▒░░░░░░░░░░▒▒░░░░░░\n" +
		" └─ boot     │       \n" +
		"             └─ home.conf\n" +
		"\n"
	if out.String() != want {
		t.Errorf("got:\n%q\nwant:\n%q", out.String(), want)
	}
}

func TestPictureNarrowerThanOneCell(t *testing.T) {
	for _, width := range []int{-1, 0, 1, 2} {
		var out bytes.Buffer
		if err := Picture(&out, 1<<20, []Slice{{Offset: 4096, Size: 8192, Name: "a"}}, PictureOptions{Width: width}); err != nil {
			t.Fatal(err)
		}
		if want := "\n ░\n └─ a\n\n"; out.String() != want {
			t.Errorf("width %d: got %q, want %q (drawn at MinWidth)", width, out.String(), want)
		}
	}
}

// A disk's size in bytes times the width passes 2^64: the cells are still
// right (one 16 EiB disk, half of it a partition).
func TestPictureHugeDisk(t *testing.T) {
	const disk = 1 << 63
	var out bytes.Buffer
	slices := []Slice{{Offset: disk / 2, Size: disk / 4, Name: "x"}}
	if err := Picture(&out, disk, slices, PictureOptions{Width: 10}); err != nil {
		t.Fatal(err)
	}
	if want := "\n ░░░░▒▒░░\n     └─ x\n\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

// Slices names a partition by its definition's file, else its label, else
// its type, else its device node; and sorts them by offset.
func TestSlicesNames(t *testing.T) {
	esp := uuid.MustParse("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
	unknown := uuid.MustParse("11111111-2222-3333-4444-555555555555")
	p := &plan.Plan{Partitions: []plan.Partition{
		{Definition: &repartd.Definition{}, File: "home.conf", Label: "home", Index: 3, Offset: 300, NewSize: 10},
		{File: "-", Label: "boot", Index: 1, Type: esp, Offset: 100, NewSize: 10},
		{File: "-", Index: 2, Type: esp, Offset: 200, NewSize: 10},
		{File: "-", Index: 4, Type: unknown, Offset: 400, NewSize: 10},
	}}
	got := Slices(p, func(i int) string { return fmt.Sprintf("/dev/vda%d", i) })
	want := []Slice{
		{Offset: 100, Size: 10, Name: "boot"},
		{Offset: 200, Size: 10, Name: "esp"},
		{Offset: 300, Size: 10, Name: "home.conf"},
		{Offset: 400, Size: 10, Name: "/dev/vda4"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
