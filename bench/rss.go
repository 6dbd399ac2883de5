package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// peakRSS measures the peak resident set size with GNU time (-v). It
// covers the process and the children it waited for, so with Format=
// the figure is mke2fs's when mke2fs is the larger one; the run without
// Format= is each tool alone on the same first-boot work.
func (b *bench) peakRSS() error {
	const gnuTime = "/usr/bin/time"
	if _, err := os.Stat(gnuTime); err != nil {
		return fmt.Errorf("%s is missing (apt-get install time): %w", gnuTime, err)
	}
	cases := []struct {
		what   string
		size   int64
		defs   string
		noop   bool
		target bool // the 8 MiB target applies: the tool runs alone
	}{
		{"Peak RSS, no-op run", 10 * gib, b.defsExt4, true, true},
		{"Peak RSS, first run 10 GiB, no Format= (the tool alone)", 10 * gib, b.defsPlain, false, true},
		{"Peak RSS, first run 10 GiB, Format=ext4 (tool + mke2fs)", 10 * gib, b.defsExt4, false, false},
		{"Peak RSS, first run 1 TiB, Format=ext4 (tool + mke2fs)", tib, b.defsExt4, false, false},
	}
	n := b.runs(5)
	for _, c := range cases {
		b.progress("%s: %d runs each", c.what, n)
		var peak [2]int64
		for range n {
			for k, t := range []tool{b.sprout, b.repart} {
				img, err := b.grow("rss.img", c.size)
				if err != nil {
					return err
				}
				if c.noop {
					if _, err := b.timeOnce(b.repart.path, runArgs(false, c.defs, img)...); err != nil {
						return err
					}
				}
				kb, err := b.gnuTimeRSS(gnuTime, t.path, runArgs(false, c.defs, img)...)
				if err != nil {
					return err
				}
				peak[k] = max(peak[k], kb)
				if err := os.Remove(img); err != nil {
					return err
				}
			}
		}
		r := row{
			what: c.what, runs: fmt.Sprintf("%d+%d", n, n),
			sprout: mib(peak[0]), repart: mib(peak[1]),
			ratio: fmt.Sprintf("%.2f", float64(peak[0])/float64(peak[1])),
		}
		if c.target {
			r.target = "sprout ≤ 8 MiB"
			r.result = "met"
			if peak[0] > 8*1024 {
				r.result = fmt.Sprintf("MISSED by %.1f MiB", float64(peak[0]-8*1024)/1024)
			}
		}
		b.rows = append(b.rows, r)
	}
	return nil
}

// gnuTimeRSS runs one command under GNU time -v and returns its
// "Maximum resident set size" in KiB.
func (b *bench) gnuTimeRSS(gnuTime, path string, args ...string) (int64, error) {
	report := filepath.Join(b.work, "time-v.txt")
	cmd := exec.CommandContext(b.ctx, gnuTime, append([]string{"-v", "-o", report, path}, args...)...)
	cmd.Env = benchEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("%s %s: %w\n%s", path, strings.Join(args, " "), err, tail(string(out), 2000))
	}
	data, err := os.ReadFile(report)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "Maximum resident set size (kbytes)" {
			var kb int64
			if _, err := fmt.Sscan(v, &kb); err != nil {
				return 0, err
			}
			return kb, nil
		}
	}
	return 0, errors.New("GNU time printed no maximum resident set size")
}

func mib(kb int64) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }
