package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// tool is one of the two programs under test.
type tool struct {
	name, path string
}

// result is one timed run.
type result struct {
	wall   time.Duration
	maxRSS int64 // KiB, of the process and the children it waited for
}

// timeOnce runs path with args and measures the wall time from fork to
// the end of wait. Output goes to a file (no pipe, so no copying
// goroutine in the harness); a failing run is an error with its output.
func (b *bench) timeOnce(path string, args ...string) (result, error) {
	return b.timeOnceEnv(nil, path, args...)
}

// timeOnceEnv is timeOnce with extra environment variables.
func (b *bench) timeOnceEnv(extraEnv []string, path string, args ...string) (result, error) {
	log := filepath.Join(b.work, "last-run.log")
	f, err := os.Create(log)
	if err != nil {
		return result{}, err
	}
	defer f.Close()
	cmd := exec.CommandContext(b.ctx, path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(benchEnv(), extraEnv...)
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	if err != nil {
		out, _ := os.ReadFile(log)
		return result{}, fmt.Errorf("%s %s: %w\n%s", path, strings.Join(args, " "), err, tail(string(out), 2000))
	}
	r := result{wall: wall}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = ru.Maxrss
	}
	return r, nil
}

// benchEnv is the environment of every measured process: the same for
// both tools, in the C locale, without a pager or colours.
func benchEnv() []string {
	env := []string{"LC_ALL=C", "SYSTEMD_PAGER=cat", "SYSTEMD_COLORS=0", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	for _, k := range []string{"HOME", "TERM"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// pair is a side-by-side measurement.
type pair struct {
	sprout, repart []result
}

// alternate runs n rounds; in each, prepare makes the inputs of both tools
// (untimed) and returns their argument lists, and the two run in turn,
// sprout first in even rounds and systemd-repart first in odd ones, so a
// drift in the machine's speed hits both alike. check, if not nil, runs
// after the first round.
func (b *bench) alternate(n int, prepare func(round int) (sproutArgs, repartArgs []string, err error), cleanup func() error, check func() error) (pair, error) {
	var p pair
	for i := range n {
		if err := b.ctx.Err(); err != nil {
			return p, err
		}
		sa, ra, err := prepare(i)
		if err != nil {
			return p, err
		}
		order := []bool{true, false}
		if i%2 == 1 {
			order = []bool{false, true}
		}
		for _, isSprout := range order {
			if isSprout {
				r, err := b.timeOnceEnv(b.sproutEnv, b.sprout.path, sa...)
				if err != nil {
					return p, err
				}
				p.sprout = append(p.sprout, r)
			} else {
				r, err := b.timeOnce(b.repart.path, ra...)
				if err != nil {
					return p, err
				}
				p.repart = append(p.repart, r)
			}
		}
		if i == 0 && check != nil {
			if err := check(); err != nil {
				return p, err
			}
		}
		if cleanup != nil {
			if err := cleanup(); err != nil {
				return p, err
			}
		}
	}
	return p, nil
}

func median(rs []result) time.Duration {
	if len(rs) == 0 {
		return 0
	}
	d := make([]time.Duration, len(rs))
	for i, r := range rs {
		d[i] = r.wall
	}
	slices.Sort(d)
	if len(d)%2 == 1 {
		return d[len(d)/2]
	}
	return (d[len(d)/2-1] + d[len(d)/2]) / 2
}

// quantile is the q-quantile (nearest rank) of the wall times.
func quantile(rs []result, q float64) time.Duration {
	d := make([]time.Duration, len(rs))
	for i, r := range rs {
		d[i] = r.wall
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f ms", v)
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
