package cli

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/pkg/report"
	"golang.org/x/sys/unix"
)

// The table, then the bar and the tree, in a dry run and in a real run;
// --no-legend and --json print what they printed before the picture
// existed.
func TestPictureFollowsTheTable(t *testing.T) {
	defs := homeAndVar(t)
	run := func(img string, getenv map[string]string, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		args = append([]string{"--seed=0123456789abcdef0123456789abcdef", "--definitions=" + defs}, append(args, img)...)
		env := Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return getenv[k] }}
		if code := Main(context.Background(), args, env); code != 0 {
			t.Fatalf("sprout %s: exit %d\n%s", strings.Join(args, " "), code, errOut.String())
		}
		return out.String()
	}
	img := imageWithStore(t)

	out := run(img, nil, "--dry-run=yes")
	table, picture, ok := strings.Cut(out, "\n\n")
	if !ok || !strings.Contains(table, "Σ = ") {
		t.Fatalf("want the table, an empty line, the picture:\n%s", out)
	}
	lines := strings.Split(strings.TrimSuffix(picture, "\n\n"), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], " ▒") || !strings.HasSuffix(lines[0], "░") {
		t.Fatalf("want the bar and 4 tree rows:\n%s", picture)
	}
	for i, l := range lines {
		if w := len([]rune(l)); w < 79 {
			t.Errorf("row %d is %d columns, want at least 79 (80 columns when stdout is not a terminal):\n%q", i, w, l)
		}
	}
	for _, name := range []string{"└─ var.conf", "└─ home.conf", "└─ nix-store", "└─ boot"} {
		if !strings.Contains(picture, name) {
			t.Errorf("the tree does not name %q:\n%s", name, picture)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("colours outside a terminal:\n%q", out)
	}
	_, narrow, _ := strings.Cut(run(img, map[string]string{"COLUMNS": "50"}, "--dry-run=yes"), "\n\n")
	if bar, _, _ := strings.Cut(narrow, "\n"); len([]rune(bar)) != 49 {
		t.Errorf("COLUMNS=50: want a 49-column bar:\n%s", narrow)
	}

	for _, args := range [][]string{{"--no-legend"}, {"--json=short"}, {"--json=pretty"}, {"--pretty=no"}} {
		if got := run(img, nil, append(args, "--dry-run=yes")...); strings.Contains(got, "▒") || strings.Contains(got, "└─") {
			t.Errorf("%s printed the picture:\n%s", args[0], got)
		}
	}

	// A real run draws the layout it leaves, and so does the next run,
	// which has nothing to do.
	applied := run(img, nil, "--dry-run=no")
	if _, pic, _ := strings.Cut(applied, "\n\n"); pic != picture {
		t.Errorf("the real run's picture differs from the dry run's:\n%s\nwant:\n%s", pic, picture)
	}
	if _, pic, _ := strings.Cut(run(img, nil, "--dry-run=no"), "\n\n"); pic != picture {
		t.Errorf("the no-op run's picture differs from the dry run's:\n%s\nwant:\n%s", pic, picture)
	}
}

func TestPictureOptions(t *testing.T) {
	term := openTerminal(t, 123)
	cases := []struct {
		name   string
		stdout any
		env    map[string]string
		want   report.PictureOptions
	}{
		{"a pipe or the journal", &bytes.Buffer{}, nil, report.PictureOptions{Width: 80}},
		{"a file", mustCreate(t), nil, report.PictureOptions{Width: 80}},
		{"COLUMNS outside a terminal", &bytes.Buffer{}, map[string]string{"COLUMNS": "132"}, report.PictureOptions{Width: 132}},
		{"a terminal", term, nil, report.PictureOptions{Width: 123, Color: true}},
		{"COLUMNS on a terminal", term, map[string]string{"COLUMNS": "60"}, report.PictureOptions{Width: 60, Color: true}},
		{"COLUMNS=1 (drawn at the narrowest)", term, map[string]string{"COLUMNS": "1"}, report.PictureOptions{Width: 1, Color: true}},
		{"COLUMNS=0", term, map[string]string{"COLUMNS": "0"}, report.PictureOptions{Width: 123, Color: true}},
		{"COLUMNS past 65535", term, map[string]string{"COLUMNS": "65536"}, report.PictureOptions{Width: 123, Color: true}},
		{"COLUMNS not a number", &bytes.Buffer{}, map[string]string{"COLUMNS": "wide"}, report.PictureOptions{Width: 80}},
		{"NO_COLOR", term, map[string]string{"NO_COLOR": "1"}, report.PictureOptions{Width: 123}},
		{"TERM=dumb", term, map[string]string{"TERM": "dumb"}, report.PictureOptions{Width: 123}},
		{"SYSTEMD_COLORS=no", term, map[string]string{"SYSTEMD_COLORS": "no"}, report.PictureOptions{Width: 123}},
		{"SYSTEMD_COLORS=yes outside a terminal", &bytes.Buffer{}, map[string]string{"SYSTEMD_COLORS": "yes"}, report.PictureOptions{Width: 80}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := c.stdout.(interface{ Write([]byte) (int, error) })
			got := pictureOptions(w, term, func(k string) string { return c.env[k] })
			if got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
	// Colours need stderr on a terminal too (a unit's stderr is the
	// journal's stream, a script's may be a pipe), as in systemd.
	noEnv := func(string) string { return "" }
	if got, want := pictureOptions(term, &bytes.Buffer{}, noEnv), (report.PictureOptions{Width: 123}); got != want {
		t.Errorf("stderr a pipe: got %+v, want %+v", got, want)
	}
	if got, want := pictureOptions(term, mustCreate(t), noEnv), (report.PictureOptions{Width: 123}); got != want {
		t.Errorf("stderr a file: got %+v, want %+v", got, want)
	}
}

func mustCreate(t *testing.T) *os.File {
	f, err := os.Create(t.TempDir() + "/out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// openTerminal returns the terminal side of a new pseudo-terminal that
// says it is cols columns wide.
func openTerminal(t *testing.T, cols uint16) *os.File {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pts.Close() })
	if err := unix.IoctlSetWinsize(int(pts.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: cols, Row: 24}); err != nil {
		t.Fatal(err)
	}
	return pts
}
