package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// floorTarget is issue 12's goal, restated by issue 19 against the right
// floor: a no-op run costs at most this much more than a Go program that
// links what sprout's design names and does nothing.
const floorTarget = 1.15

// helloWorld is the plain Go floor, for reference: the smallest useful Go
// program. The design floor (bench/gofloor) is the same program with the
// design's four packages linked.
const helloWorld = `package main

import "fmt"

func main() { fmt.Println("hello, world") }
`

// goCommand is the toolchain that built sprout ($GO, as bench/run.sh
// sets it).
func goCommand() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

// goBuild builds a static program with sprout's flags (-trimpath, -s -w,
// CGO_ENABLED=0) into bin.
func goBuild(dir, bin, pkg string, extraEnv ...string) error {
	cmd := exec.Command(goCommand(), "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, pkg)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS="), extraEnv...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %w\n%s", pkg, err, out)
	}
	return nil
}

// buildFloors builds the design floor from sprout's module (so it links
// the versions sprout links) and the plain hello world in a module of its
// own.
func (b *bench) buildFloors() (design, hello string, err error) {
	design = filepath.Join(b.work, "gofloor")
	if err := goBuild(b.cfg.repo, design, "./bench/gofloor"); err != nil {
		return "", "", err
	}
	dir := filepath.Join(b.work, "hello")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	files := map[string]string{"main.go": helloWorld, "go.mod": "module hello\n\ngo 1.26\n"}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return "", "", err
		}
	}
	hello = filepath.Join(dir, "hello")
	return design, hello, goBuild(dir, hello, ".", "GOWORK=off")
}

// goFloor times sprout's no-op, the design floor, the plain hello world
// and systemd-repart's no-op in rounds, rotating which runs first, so
// that all four see the same machine. The Go programs run with
// GOMAXPROCS=1 (sprout.service sets it; the floors get the same
// environment). Where perf is installed it also counts page faults, the
// one measure the machine's load does not move.
func (b *bench) goFloor(sproutArgs, repartArgs []string) ([]row, string, error) {
	design, hello, err := b.buildFloors()
	if err != nil {
		return nil, "", err
	}
	unit := []string{"GOMAXPROCS=1"}
	runs := []func() (result, error){
		func() (result, error) { return b.timeOnceEnv(unit, b.sprout.path, sproutArgs...) },
		func() (result, error) { return b.timeOnceEnv(unit, design) },
		func() (result, error) { return b.timeOnceEnv(unit, hello) },
		func() (result, error) { return b.timeOnce(b.repart.path, repartArgs...) },
	}
	times := make([][]result, len(runs))
	n := b.runs(300)
	b.progress("no-op against the Go floors: %d rounds of sprout, design floor, hello world, systemd-repart", n)
	for i := range n {
		if err := b.ctx.Err(); err != nil {
			return nil, "", err
		}
		for j := range runs {
			k := (i + j) % len(runs)
			r, err := runs[k]()
			if err != nil {
				return nil, "", err
			}
			times[k] = append(times[k], r)
		}
	}
	s, f, h, r := median(times[0]), median(times[1]), median(times[2]), median(times[3])
	q := ratio(s, f)
	rows := []row{{
		what:   "No-op ÷ Go floor: sprout's no-op ÷ a static Go hello world linking the design's four packages (go-diskfs partition/gpt, x/sys/unix, google/uuid, go-systemd journal and daemon; `bench/gofloor`), same flags, both `GOMAXPROCS=1`",
		runs:   fmt.Sprintf("%d+%d", len(times[0]), len(times[1])),
		sprout: ms(s), repart: "floor " + ms(f),
		ratio:  fmt.Sprintf("%.2f", q),
		target: fmt.Sprintf("≤ %.2f × floor", floorTarget),
		result: judge(q, floorTarget),
	}}
	sizes := make([]string, 0, 3)
	for _, p := range []string{b.sprout.path, design, hello} {
		if st, err := os.Stat(p); err == nil {
			sizes = append(sizes, fmt.Sprintf("%.2f MiB", float64(st.Size())/(1<<20)))
		}
	}
	note := fmt.Sprintf("Go floor round (sprout, design floor, plain hello world, systemd-repart rotating, %d rounds): medians %s / %s / %s / %s; p10 / p90: sprout %s / %s, design floor %s / %s. "+
		"The design floor is %.2f × the plain hello world (what linking the design's packages costs before any work); sprout's no-op is %.2f × the plain hello world. Binaries: sprout, design floor, hello world %s.",
		n, ms(s), ms(f), ms(h), ms(r), ms(quantile(times[0], 0.1)), ms(quantile(times[0], 0.9)), ms(quantile(times[1], 0.1)), ms(quantile(times[1], 0.9)),
		ratio(f, h), ratio(s, h), strings.Join(sizes, ", "))

	faults, err := b.pageFaults(unit, [][]string{append([]string{b.sprout.path}, sproutArgs...), {design}, {hello}})
	switch {
	case errors.Is(err, exec.ErrNotFound):
		note += " Page faults not counted: perf is not installed."
	case err != nil:
		return nil, "", err
	default:
		rows = append(rows, row{
			what:   "No-op ÷ Go floor in page faults (`perf stat -r 50 -e page-faults`, mean; the plain hello world in the note)",
			runs:   "50+50",
			sprout: fmt.Sprintf("%.0f", faults[0]), repart: fmt.Sprintf("floor %.0f", faults[1]),
			ratio:  fmt.Sprintf("%.2f", faults[0]/faults[1]),
			result: "for the time row: a fault costs 25–50 µs here",
		})
		note += fmt.Sprintf(" Page faults (mean of 50 runs each): sprout's no-op %.0f, design floor %.0f, plain hello world %.0f.", faults[0], faults[1], faults[2])
	}
	return rows, note, nil
}

// pageFaults runs each command line 50 times under `perf stat -e
// page-faults` and returns the mean count of each; exec.ErrNotFound when
// perf is missing.
func (b *bench) pageFaults(env []string, commands [][]string) ([]float64, error) {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return nil, err
	}
	b.progress("page faults: perf stat -r 50 for sprout's no-op and the two floors")
	out := filepath.Join(b.work, "perf-stat.csv")
	var means []float64
	for _, c := range commands {
		args := append([]string{"stat", "-r", "50", "-x", ",", "-e", "page-faults", "-o", out, "--"}, c...)
		cmd := exec.CommandContext(b.ctx, perf, args...)
		cmd.Env = append(benchEnv(), env...)
		if o, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("perf stat %s: %w\n%s", filepath.Base(c[0]), err, tail(string(o), 2000))
		}
		raw, err := os.ReadFile(out)
		if err != nil {
			return nil, err
		}
		mean, err := perfMean(string(raw), "page-faults")
		if err != nil {
			return nil, fmt.Errorf("perf stat %s: %w", filepath.Base(c[0]), err)
		}
		means = append(means, mean)
	}
	return means, nil
}

// perfMean finds event's value in `perf stat -x ,` output ("value,unit,
// event,variance,...").
func perfMean(csv, event string) (float64, error) {
	for _, line := range strings.Split(csv, "\n") {
		f := strings.Split(line, ",")
		if len(f) >= 3 && f[2] == event {
			return strconv.ParseFloat(f[0], 64)
		}
	}
	return 0, fmt.Errorf("no %s count in:\n%s", event, csv)
}
