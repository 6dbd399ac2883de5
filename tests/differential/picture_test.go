package differential

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sprout-initrd/sprout/tests/harness"
	"golang.org/x/sys/unix"
)

// pictureDir holds systemd-repart 262's pictures of named layouts, which
// pkg/report's unit test compares its drawing with.
const pictureDir = "../../pkg/report/testdata/picture"

// pictureCase is one file of pictureDir (the format is pkg/report's
// picture_test.go's).
type pictureCase struct {
	name    string
	kind    string // "layout", "seed-article plan", "seed-article result"
	disk    int64
	width   int
	color   bool
	slices  []pictureSlice
	picture string
}

type pictureSlice struct {
	offset, size int64
	name         string
}

func readPictureCases(t *testing.T) []pictureCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(pictureDir, "*.txt"))
	if err != nil || len(files) < 10 {
		t.Fatalf("want the recorded pictures in %s, found %d (%v)", pictureDir, len(files), err)
	}
	var cases []pictureCase
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		head, pic, ok := strings.Cut(string(b), "-- picture --\n")
		if !ok {
			t.Fatalf("%s: no picture", f)
		}
		pic = strings.TrimSuffix(strings.ReplaceAll(pic, "^[", "\x1b"), "\n")
		c := pictureCase{name: strings.TrimSuffix(filepath.Base(f), ".txt"), picture: pic}
		for _, line := range strings.Split(head, "\n") {
			k, v, _ := strings.Cut(line, " ")
			switch k {
			case "case":
				c.kind = v
			case "disk":
				c.disk, err = strconv.ParseInt(v, 10, 64)
			case "width":
				c.width, err = strconv.Atoi(v)
			case "color":
				c.color = v == "yes"
			case "slice":
				f := strings.Fields(v)
				if len(f) != 3 {
					t.Fatalf("%s: %q", c.name, line)
				}
				var s pictureSlice
				s.offset, err = strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					s.size, err = strconv.ParseInt(f[1], 10, 64)
				}
				s.name = f[2]
				c.slices = append(c.slices, s)
			}
			if err != nil {
				t.Fatalf("%s: %q: %v", c.name, line, err)
			}
		}
		cases = append(cases, c)
	}
	return cases
}

// TestPictureAsOracle draws each recorded layout again with the programs
// on a real image: sprout's picture — through its command line, its width
// and colour choice, on a pipe or a terminal — must be the recorded one;
// and where systemd-repart 252 draws what 262 drew (its tree follows its
// table's order, definitions first, which is the disk's order in the
// "layout" cases but not in the seed article's), 252's must be too, so
// the recordings are checked against a live oracle.
func TestPictureAsOracle(t *testing.T) {
	s := begin(t)
	ctx := context.Background()
	for _, c := range readPictureCases(t) {
		t.Run(c.name, func(t *testing.T) {
			s.acquire(t)
			dir := t.TempDir()
			img, defs, err := c.build(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			tools := []string{s.sprout}
			if c.kind == "layout" {
				tools = append(tools, harness.HostRepart)
			}
			for _, tool := range tools {
				got, err := drawPicture(ctx, tool, c, img, defs)
				if err != nil {
					t.Fatal(err)
				}
				if got != c.picture {
					t.Errorf("%s draws, at %d columns (%s):\n%s\nsystemd-repart 262 drew:\n%s", tool, c.width,
						map[bool]string{true: "a terminal", false: "a pipe"}[c.color], got, c.picture)
				}
			}
		})
	}
}

var (
	espType     = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	genericType = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
)

// build makes the case's disk in dir: its image and definitions directory.
func (c pictureCase) build(ctx context.Context, dir string) (img, defs string, err error) {
	img, defs = filepath.Join(dir, "disk.img"), filepath.Join(dir, "defs")
	if err := os.Mkdir(defs, 0o755); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		return "", "", err
	}
	if err := os.Truncate(img, c.disk); err != nil {
		return "", "", err
	}
	var script strings.Builder
	script.WriteString("label: gpt\nfirst-lba: 34\n")
	switch c.kind {
	case "layout":
		// The first partition is matched by a definition of its name and
		// exact size, the others are foreign and named by their labels
		// (an empty label shows as the type's name).
		for i, sl := range c.slices {
			typ, label := genericType, sl.name
			if i == 0 {
				typ, label = espType, "first"
				def := fmt.Sprintf("[Partition]\nType=esp\nSizeMinBytes=%d\nSizeMaxBytes=%d\n", sl.size, sl.size)
				if err := os.WriteFile(filepath.Join(defs, sl.name), []byte(def), 0o644); err != nil {
					return "", "", err
				}
			}
			if label == "linux-generic" {
				label = ""
			}
			fmt.Fprintf(&script, "start=%d, size=%d, type=%s, name=%q\n", sl.offset/512, sl.size/512, typ, label)
		}
	case "seed-article plan", "seed-article result":
		// The article's image dd'ed onto a disk 10 GiB bigger: ESP "boot"
		// and "nix-store"; the definitions add home and var.
		fmt.Fprintf(&script, "start=2048, size=409600, type=%s, name=\"boot\"\n", espType)
		fmt.Fprintf(&script, "start=411648, size=703056, type=%s, name=\"nix-store\"\n", genericType)
		for _, f := range []string{"home.conf", "var.conf"} {
			b, err := os.ReadFile(filepath.Join("../../testdata/differential/seed-article/defs", f))
			if err != nil {
				return "", "", err
			}
			if err := os.WriteFile(filepath.Join(defs, f), b, 0o644); err != nil {
				return "", "", err
			}
		}
	default:
		return "", "", fmt.Errorf("case %q: unknown kind %q", c.name, c.kind)
	}
	res, err := harness.RunInput(ctx, []byte(script.String()), "sfdisk", "-q", "--no-reread", "--no-tell-kernel", img)
	if err == nil && res.ExitCode != 0 {
		err = fmt.Errorf("sfdisk: exit %d: %s", res.ExitCode, res.Stderr)
	}
	if err != nil {
		return "", "", err
	}
	if c.kind == "seed-article result" {
		// The disk as the first boot leaves it (252's run; sprout's
		// leaves the same table, which the scenario seed-article checks).
		res, err := harness.Run(ctx, nil, harness.HostRepart, "--dry-run=no", "--definitions="+defs, "--seed="+pictureSeed, img)
		if err == nil && res.ExitCode != 0 {
			err = fmt.Errorf("%s: exit %d: %s", res.CommandLine(), res.ExitCode, res.Stderr)
		}
		if err != nil {
			return "", "", err
		}
	}
	return img, defs, nil
}

const pictureSeed = "0123456789abcdef0123456789abcdef"

// drawPicture runs tool's dry run on img and returns its picture (the bar
// and the tree, without the empty lines around them): through a pipe
// with $COLUMNS, or on a pseudo-terminal of the case's width. The
// environment has no locale: systemd then draws with UTF-8 glyphs, as in
// an initrd (LC_ALL=C would make it draw ASCII).
func drawPicture(ctx context.Context, tool string, c pictureCase, img, defs string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, "--dry-run=yes", "--no-pager", "--definitions="+defs, "--seed="+pictureSeed, img)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "SYSTEMD_PAGER=cat"}
	var out bytes.Buffer
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if !c.color {
		cmd.Env = append(cmd.Env, "COLUMNS="+strconv.Itoa(c.width))
		cmd.Stdout = &out
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("%s: %v\n%s", tool, err, stderr.String())
		}
	} else {
		cmd.Env = append(cmd.Env, "TERM=xterm-256color")
		ptmx, pts, err := openPseudoTerminal(c.width)
		if err != nil {
			return "", err
		}
		defer ptmx.Close()
		// Both on the terminal: systemd colours only when stdout and
		// stderr are terminals.
		cmd.Stdout, cmd.Stderr = pts, pts
		err = cmd.Start()
		pts.Close()
		if err != nil {
			return "", err
		}
		// The terminal's output until the program exits (EIO then).
		done := make(chan struct{})
		go func() { _, _ = io.Copy(&out, ptmx); close(done) }()
		err = cmd.Wait()
		<-done
		if err != nil {
			return "", fmt.Errorf("%s: %v\n%s", tool, err, stderr.String())
		}
	}
	lines := strings.Split(strings.ReplaceAll(out.String(), "\r\n", "\n"), "\n")
	start := -1
	for i, l := range lines {
		if strings.ContainsAny(l, "▒░") {
			start = i
			break
		}
	}
	if start < 0 {
		return "", fmt.Errorf("%s printed no picture:\n%s\n%s", tool, out.String(), stderr.String())
	}
	end := start
	for end < len(lines) && lines[end] != "" {
		end++
	}
	return strings.Join(lines[start:end], "\n"), nil
}

// openPseudoTerminal returns a new pseudo-terminal's two sides, the
// terminal side cols columns wide.
func openPseudoTerminal(cols int) (ptmx, pts *os.File, err error) {
	ptmx, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*os.File, *os.File, error) {
		ptmx.Close()
		return nil, nil, fmt.Errorf("pseudo-terminal: %w", err)
	}
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return fail(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		return fail(err)
	}
	pts, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fail(err)
	}
	if err := unix.IoctlSetWinsize(int(pts.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(cols), Row: 50}); err != nil {
		pts.Close()
		return fail(err)
	}
	// Raw output: no "\n" → "\r\n" (compared byte for byte).
	tio, err := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS)
	if err == nil {
		tio.Oflag &^= unix.OPOST
		err = unix.IoctlSetTermios(int(pts.Fd()), unix.TCSETS, tio)
	}
	if err != nil {
		pts.Close()
		return fail(err)
	}
	return ptmx, pts, nil
}
