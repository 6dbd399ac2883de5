// Command bench runs sprout and systemd-repart 252 side by side on
// identical copies of the same image files and prints one table: the
// median of each, and the ratio sprout/systemd-repart. `make bench` runs
// it through bench/run.sh; docs/benchmarks.md explains every row.
//
// It needs root (systemd-repart formats through loop devices, dracut
// builds initrds), the tools bench/run.sh installs, and a work directory
// that holds 16 TiB and 64 TiB sparse files (tmpfs does; ext4 caps files
// at 16 TiB - 4 KiB).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// config is the command line.
type config struct {
	sprout, repart string // the two binaries
	repo           string // the sprout checkout (testdata, go test)
	dir            string // work directory ("" picks one)
	scale          float64
	out            string // Markdown copy of the results
	record         string // docs file whose results block is replaced
	only           string // comma-separated sections, for development
	command        string // how the run was started, for the record
}

func main() {
	var c config
	flag.StringVar(&c.sprout, "sprout", "bin/sprout", "the sprout binary")
	flag.StringVar(&c.repart, "repart", "/usr/bin/systemd-repart", "the systemd-repart binary")
	flag.StringVar(&c.repo, "repo", ".", "the sprout checkout")
	flag.StringVar(&c.dir, "dir", "", "work directory (default: a new directory in /dev/shm, else in $TMPDIR)")
	flag.Float64Var(&c.scale, "scale", 1, "multiply every run count by this (at least 3 runs stay)")
	flag.StringVar(&c.out, "out", "build/bench/results.md", "write the results as Markdown here")
	flag.StringVar(&c.record, "record", "", "also replace the results block of this file (docs/benchmarks.md)")
	flag.StringVar(&c.only, "only", "", "run only these sections: noop,first,plan,rss,footprint,fastpath,go")
	flag.StringVar(&c.command, "command", "", "the command that started the run, for the record")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: systemd-repart formats image files through loop devices")
	}
	var err error
	for _, p := range []*string{&c.sprout, &c.repart, &c.repo} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	for _, p := range []string{c.sprout, c.repart} {
		if _, err := os.Stat(p); err != nil {
			return err
		}
	}
	work, err := workDir(c.dir)
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	b := &bench{cfg: c, ctx: ctx, work: work, started: time.Now()}
	b.sprout = tool{name: "sprout", path: c.sprout}
	b.repart = tool{name: "systemd-repart", path: c.repart}
	b.env = describeMachine(b)
	b.progress("work directory %s (%s)", work, b.env.workFS)

	sections := []struct {
		name string
		run  func() error
	}{
		{"setup", b.setup},
		{"noop", b.noop},
		{"first", b.firstRuns},
		{"plan", b.planTimes},
		{"rss", b.peakRSS},
		{"footprint", b.footprint},
		{"fastpath", b.fastPath},
		{"go", b.goBenchmarks},
	}
	for _, s := range sections {
		if s.name != "setup" && c.only != "" && !strings.Contains(","+c.only+",", ","+s.name+",") {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		t0 := time.Now()
		if err := s.run(); err != nil {
			if s.name == "setup" || ctx.Err() != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			// One broken section must not hide the others' results.
			b.failures++
			b.rows = append(b.rows, row{what: "Section " + s.name, result: "ERROR: " + firstLine(err.Error())})
			b.notes = append(b.notes, fmt.Sprintf("Section %s failed: %v", s.name, err))
		}
		b.progress("%s done in %s", s.name, time.Since(t0).Round(time.Second))
	}
	b.env.loadEnd = loadAverage()
	b.env.duration = time.Since(b.started).Round(time.Second)

	report := b.render()
	fmt.Print(report)
	if c.out != "" {
		if err := os.MkdirAll(filepath.Dir(c.out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(c.out, []byte(report), 0o644); err != nil {
			return err
		}
	}
	if c.record != "" {
		if err := recordInto(c.record, report); err != nil {
			return err
		}
	}
	if b.failures > 0 {
		return fmt.Errorf("%d check(s) failed (see the table)", b.failures)
	}
	return nil
}

// workDir makes the directory the images live in. tmpfs is preferred:
// it holds the 64 TiB sparse files and keeps the host disk's noise out.
func workDir(dir string) (string, error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		return os.MkdirTemp(dir, "sprout-bench-")
	}
	var st syscall.Statfs_t
	const tmpfsMagic = 0x01021994
	if syscall.Statfs("/dev/shm", &st) == nil && st.Type == tmpfsMagic && st.Bavail*uint64(st.Bsize) >= 6<<30 {
		return os.MkdirTemp("/dev/shm", "sprout-bench-")
	}
	return os.MkdirTemp("", "sprout-bench-")
}

// bench is one run of the whole benchmark.
type bench struct {
	cfg            config
	ctx            context.Context
	work           string
	started        time.Time
	sprout, repart tool
	env            machine
	rows           []row
	notes          []string // printed under the table
	appendix       []string // raw outputs (go test -bench, initrd listings)
	failures       int
	sproutEnv      []string // added to sprout's environment in alternate (the unit's GOMAXPROCS=1 row)

	// Set by setup.
	base      string // the factory image, 545 MiB
	defsExt4  string // home + var, Format=ext4 (the seed scenario)
	defsPlain string // home + var without Format=
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[bench %6s] %s\n", time.Since(b.started).Round(time.Second), fmt.Sprintf(format, args...))
}

// runs scales a run count; a median needs at least 3.
func (b *bench) runs(n int) int {
	return max(3, int(float64(n)*b.cfg.scale+0.5))
}
