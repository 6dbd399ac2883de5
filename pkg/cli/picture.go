package cli

import (
	"io"
	"os"
	"strconv"

	"github.com/sprout-initrd/sprout/pkg/report"
	"github.com/sprout-initrd/sprout/pkg/sdvalue"
	"golang.org/x/sys/unix"
)

// pictureOptions decides how wide the layout picture is and whether it has
// colours, as systemd-repart 262 does (observed; docs/man/sprout.8.md,
// OUTPUT):
//   - width: $COLUMNS when it is a number from 1 to 65535 (what a terminal
//     can report; 1 and 2 draw at report.MinWidth), else the terminal's
//     width when stdout is one, else 80 — in the journal, in a pipe and in
//     a file the picture is 80 columns wide, as in the seed article's log;
//   - colours only when stdout and stderr are terminals (a pipe or the
//     journal on either side means plain), and not with $NO_COLOR set,
//     $TERM=dumb or $SYSTEMD_COLORS false.
func pictureOptions(stdout, stderr io.Writer, getenv func(string) string) report.PictureOptions {
	termWidth, terminal := terminalWidth(stdout)
	width := 80
	if n, err := strconv.Atoi(getenv("COLUMNS")); err == nil && n >= 1 && n <= 65535 {
		width = n
	} else if terminal && termWidth > 0 {
		width = termWidth
	}
	_, errTerminal := terminalWidth(stderr)
	color := terminal && errTerminal && getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
	if b, err := sdvalue.ParseBool(getenv("SYSTEMD_COLORS")); err == nil && !b {
		color = false
	}
	return report.PictureOptions{Width: width, Color: color}
}

// terminalWidth returns w's width in columns and whether w is a terminal
// (one ioctl answers both).
func terminalWidth(w io.Writer) (int, bool) {
	f, ok := w.(*os.File)
	if !ok {
		return 0, false
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0, false
	}
	return int(ws.Col), true
}
