package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// goResult is the best of a Go benchmark's -count runs.
type goResult struct {
	nsPerOp float64
	metrics map[string]float64 // B/op, allocs/op, reads/op, …
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(.*)$`)

// goBenchmarks runs the planner and GPT codec benchmarks (testing.B) and
// summarises them; the raw output goes into the appendix.
func (b *bench) goBenchmarks() error {
	b.progress("go test -bench (planner, GPT codec)")
	args := []string{"test", "-run=^$", "-bench=.", "-benchtime=" + benchTime(b.cfg.scale), "-count=5", "./pkg/plan", "./pkg/gpt"}
	goCmd := os.Getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	cmd := exec.CommandContext(b.ctx, goCmd, args...)
	cmd.Dir = b.cfg.repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, tail(string(out), 3000))
	}
	b.appendix = append(b.appendix, "`go "+strings.Join(args, " ")+"`:\n\n```\n"+strings.TrimSpace(string(out))+"\n```")

	res := map[string]goResult{}
	for _, line := range strings.Split(string(out), "\n") {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		ns, _ := strconv.ParseFloat(m[2], 64)
		r := goResult{nsPerOp: ns, metrics: map[string]float64{}}
		f := strings.Fields(m[3])
		for i := 0; i+1 < len(f); i += 2 {
			v, _ := strconv.ParseFloat(f[i], 64)
			r.metrics[f[i+1]] = v
		}
		// The minimum of the runs: the least disturbed by other load.
		if old, ok := res[m[1]]; !ok || r.nsPerOp < old.nsPerOp {
			res[m[1]] = r
		}
	}
	get := func(name string) (goResult, error) {
		r, ok := res[name]
		if !ok {
			return r, fmt.Errorf("go test printed no result for %s", name)
		}
		return r, nil
	}

	sizes := []string{"1GiB", "10GiB", "1TiB", "16TiB", "64TiB"}
	for _, bm := range []struct{ name, what string }{
		{"BenchmarkFirstRun", "Planner in process (Go benchmark), first run, 1 GiB → 10 GiB → 1 TiB → 16 TiB → 64 TiB"},
		{"BenchmarkNoop", "Planner in process (Go benchmark), no-op, 1 GiB → 64 TiB"},
		{"BenchmarkRead", "GPT read (Go benchmark), 1 GiB → 64 TiB"},
		{"BenchmarkReadGoDiskfs", "GPT read with go-diskfs's gpt.Read instead, primary copy only (Go benchmark, for comparison: docs/gpt.md), 1 GiB → 64 TiB"},
		{"BenchmarkEncode", "GPT encode: go-diskfs's Write and sprout's guards and check (Go benchmark), 1 GiB → 64 TiB"},
	} {
		var vals []string
		var lo, hi float64
		allocs := map[float64]bool{}
		var last goResult
		for i, s := range sizes {
			r, err := get(bm.name + "/size=" + s)
			if err != nil {
				return err
			}
			vals = append(vals, us(r.nsPerOp))
			if i == 0 || r.nsPerOp < lo {
				lo = r.nsPerOp
			}
			hi = max(hi, r.nsPerOp)
			allocs[r.metrics["allocs/op"]] = true
			last = r
		}
		// Identical allocations at every size show the work does not
		// depend on it; the time spread is what the machine's load adds.
		result := fmt.Sprintf("flat: same allocations at every size (time spread ×%.2f)", hi/lo)
		if len(allocs) != 1 {
			result = "GROWS: allocations depend on the disk size"
			b.failures++
		}
		what := bm.what
		if rd, ok := last.metrics["reads/op"]; ok {
			what += fmt.Sprintf(" (%.0f reads, %s read per table)", rd, bytesStr(int64(last.metrics["bytes-read/op"])))
		}
		b.rows = append(b.rows, row{what: what, runs: "best of 5", sprout: strings.Join(vals, " → "), target: "≈ ×1 (flat)", result: result})
	}

	var vals []string
	var one, hundred float64
	for _, n := range []int{1, 8, 32, 100} {
		r, err := get(fmt.Sprintf("BenchmarkDefinitions/defs=%d", n))
		if err != nil {
			return err
		}
		vals = append(vals, us(r.nsPerOp))
		switch n {
		case 1:
			one = r.nsPerOp
		case 100:
			hundred = r.nsPerOp
		}
	}
	b.rows = append(b.rows, row{what: "Planner in process (Go benchmark), 1 → 8 → 32 → 100 definitions, 1 TiB", runs: "best of 5",
		sprout: strings.Join(vals, " → "), result: fmt.Sprintf("≈ %s per extra definition", us((hundred-one)/99))})
	return nil
}

// benchTime keeps the Go benchmarks short; -scale shortens them further.
func benchTime(scale float64) string {
	ms := max(20, int(200*scale))
	return strconv.Itoa(ms) + "ms"
}

func us(ns float64) string {
	if ns >= 1000 {
		return fmt.Sprintf("%.1f µs", ns/1000)
	}
	return fmt.Sprintf("%.0f ns", ns)
}
