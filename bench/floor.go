package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// floorTarget is issue 12's goal: a no-op run costs at most this much more
// than a Go program that does nothing.
const floorTarget = 1.15

// helloWorld is the floor: the smallest useful Go program, built with
// sprout's flags (static, -trimpath, -s -w). Whatever sprout's no-op costs
// beyond it is sprout's own; below it no Go program can go.
const helloWorld = `package main

import "fmt"

func main() { fmt.Println("hello, world") }
`

// buildHello builds the floor program into the work directory with the
// toolchain that built sprout ($GO, as bench/run.sh sets it).
func (b *bench) buildHello() (string, error) {
	dir := filepath.Join(b.work, "hello")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	files := map[string]string{"main.go": helloWorld, "go.mod": "module hello\n\ngo 1.26\n"}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return "", err
		}
	}
	goCmd := os.Getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	bin := filepath.Join(dir, "hello")
	cmd := exec.Command(goCmd, "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the Go hello world: %w\n%s", err, out)
	}
	return bin, nil
}

// goFloor times sprout's no-op, the hello world and systemd-repart's
// no-op in rounds, rotating which runs first, so that all three see the
// same machine. Both Go programs run with GOMAXPROCS=1 (sprout.service
// sets it; the floor gets the same environment).
func (b *bench) goFloor(sproutArgs, repartArgs []string) (row, string, error) {
	hello, err := b.buildHello()
	if err != nil {
		return row{}, "", err
	}
	unit := []string{"GOMAXPROCS=1"}
	runs := []func() (result, error){
		func() (result, error) { return b.timeOnceEnv(unit, b.sprout.path, sproutArgs...) },
		func() (result, error) { return b.timeOnceEnv(unit, hello) },
		func() (result, error) { return b.timeOnce(b.repart.path, repartArgs...) },
	}
	times := make([][]result, len(runs))
	n := b.runs(300)
	b.progress("no-op against the Go floor: %d rounds of sprout, hello world, systemd-repart", n)
	for i := range n {
		if err := b.ctx.Err(); err != nil {
			return row{}, "", err
		}
		for j := range runs {
			k := (i + j) % len(runs)
			r, err := runs[k]()
			if err != nil {
				return row{}, "", err
			}
			times[k] = append(times[k], r)
		}
	}
	s, h, r := median(times[0]), median(times[1]), median(times[2])
	q := ratio(s, h)
	floor := row{
		what:   "No-op ÷ Go floor: sprout's no-op ÷ a static Go hello world built with the same flags, both `GOMAXPROCS=1`",
		runs:   fmt.Sprintf("%d+%d", len(times[0]), len(times[1])),
		sprout: ms(s), repart: "hello world " + ms(h),
		ratio:  fmt.Sprintf("%.2f", q),
		target: fmt.Sprintf("≤ %.2f × hello", floorTarget),
		result: judge(q, floorTarget),
	}
	note := fmt.Sprintf("Go floor round (sprout, hello world, systemd-repart rotating, %d rounds): medians %s / %s / %s; p10 / p90: sprout %s / %s, hello world %s / %s. The ratio's row gives hello world's median in the systemd-repart column.",
		n, ms(s), ms(h), ms(r), ms(quantile(times[0], 0.1)), ms(quantile(times[0], 0.9)), ms(quantile(times[1], 0.1)), ms(quantile(times[1], 0.9)))
	return floor, note, nil
}
