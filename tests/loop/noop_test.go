package loop

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// processTrace counts what a process did that a no-op boot must not do.
type processTrace struct {
	execs, forks, threads int
	poller                []string // epoll instances and eventfds: the runtime's poller started
	writableOpens         []string // files opened for writing or created
	sockets               int
}

var (
	openForWriteRE = regexp.MustCompile(`O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND`)
	failedCallRE   = regexp.MustCompile(`\) += -1 `)
)

// straceProcess runs argv under strace -f with env added and counts.
func straceProcess(t *testing.T, env []string, argv ...string) (processTrace, harness.Result) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "strace.txt")
	full := append([]string{"strace", "-f", "-qq", "-o", out,
		"-e", "trace=execve,clone,clone3,fork,vfork,epoll_create,epoll_create1,eventfd,eventfd2,open,openat,creat,socket"}, argv...)
	res, err := harness.Run(context.Background(), env, full...)
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var pt processTrace
	for _, line := range strings.Split(string(text), "\n") {
		m := callRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, args := m[2], m[3]
		failed := failedCallRE.MatchString(args)
		switch {
		case name == "execve" && !failed:
			pt.execs++
		case name == "clone" || name == "clone3" || name == "fork" || name == "vfork":
			if strings.Contains(args, "CLONE_THREAD") {
				pt.threads++
			} else {
				pt.forks++
			}
		case strings.HasPrefix(name, "epoll_create") || strings.HasPrefix(name, "eventfd"):
			pt.poller = append(pt.poller, name)
		case name == "creat" || (strings.HasPrefix(name, "open") && openForWriteRE.MatchString(args)):
			pt.writableOpens = append(pt.writableOpens, name+"("+args)
		case name == "socket":
			pt.sockets++
		}
	}
	if pt.execs == 0 {
		t.Fatalf("strace recorded no execve of %s:\n%s", argv[0], res.Stderr)
	}
	return pt, res
}

// helloWorld builds the Go floor: a hello world with sprout's build flags.
func helloWorld(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello, world\") }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "hello")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the hello world: %v\n%s", err, out)
	}
	return bin
}

// Every boot after the first runs the no-op, so it must stay lean
// (docs/benchmarks.md, "no-op ÷ Go floor"). Cheaper and steadier than a
// timing test, this watches what the no-op does: it starts no program
// and forks nothing, opens nothing for writing, starts no more threads
// than a Go hello world does (signal handling would add one), never
// starts the runtime's poller (epoll and eventfd come with os.File
// reads and timers), and opens no socket outside a service (journal and
// status messages go out only when systemd asks for them).
func TestNoOpRunDoesOnlyWhatANoOpNeeds(t *testing.T) {
	begin(t, "strace", "go")
	d := seedDisk(t, 512)
	apply(t, d, "seed-defs")
	unit := []string{"GOMAXPROCS=1"} // as sprout.service runs it

	hello := helloWorld(t)
	floorThreads := 0
	for range 5 {
		pt, res := straceProcess(t, unit, hello)
		if res.ExitCode != 0 {
			t.Fatalf("hello world: exit %d\n%s", res.ExitCode, res.Stderr)
		}
		floorThreads = max(floorThreads, pt.threads)
	}

	pt, res := straceProcess(t, unit, append([]string{theTier.sprout}, sproutArgs(t, d, "seed-defs")...)...)

	if res.ExitCode != 0 || !strings.Contains(res.Stderr, "No changes.") {
		t.Fatalf("no-op run: exit %d, want 0 and \"No changes.\"\n%s", res.ExitCode, res.Stderr)
	}
	if pt.execs != 1 || pt.forks != 0 {
		t.Errorf("the no-op ran %d programs besides itself and forked %d processes; want none", pt.execs-1, pt.forks)
	}
	if len(pt.writableOpens) > 0 {
		t.Errorf("the no-op opened files for writing: %v", pt.writableOpens)
	}
	if pt.threads > floorThreads {
		t.Errorf("the no-op started %d threads, a Go hello world at most %d (signal handling or blocking work added some)", pt.threads, floorThreads)
	}
	if len(pt.poller) > 0 {
		t.Errorf("the no-op started the runtime's poller (%v): some file was read through os.File or a timer was set", pt.poller)
	}
	if pt.sockets > 0 {
		t.Errorf("the no-op opened %d sockets outside a service (no JOURNAL_STREAM, no NOTIFY_SOCKET)", pt.sockets)
	}
}
