package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// DefaultTimeout bounds one external command; mkfs on a 2 TiB sparse image
// takes about a second, so anything near this limit is a hang.
const DefaultTimeout = 3 * time.Minute

// Result is the outcome of one external command.
type Result struct {
	Argv     []string
	Stdout   string
	Stderr   string
	ExitCode int            // -1 when the process did not exit normally
	Signal   syscall.Signal // non-zero when the process was killed by a signal
	Duration time.Duration
}

// CommandLine renders Argv as a shell-pasteable line.
func (r Result) CommandLine() string { return ShellJoin(r.Argv) }

// Run executes argv with the given extra environment (KEY=VALUE entries
// added to a cleaned copy of the test process environment). A non-zero exit
// is not an error: it is reported in Result.ExitCode. An error means the
// command could not be started, timed out or died from a signal.
func Run(ctx context.Context, env []string, argv ...string) (Result, error) {
	return run(ctx, env, nil, argv)
}

// RunInput is Run with stdin fed from input.
func RunInput(ctx context.Context, input []byte, argv ...string) (Result, error) {
	return run(ctx, nil, input, argv)
}

func run(ctx context.Context, env []string, input []byte, argv []string) (Result, error) {
	if len(argv) == 0 {
		return Result{}, errors.New("run: empty argv")
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(toolEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if input != nil {
		cmd.Stdin = bytes.NewReader(input)
	}
	start := time.Now()
	err := cmd.Run()
	res := Result{
		Argv:     argv,
		Stdout:   stdout.String(),
		Stderr:   stderr.String(),
		ExitCode: cmd.ProcessState.ExitCode(),
		Duration: time.Since(start),
	}
	if err == nil {
		return res, nil
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		return res, fmt.Errorf("run %s: %w", res.CommandLine(), err)
	}
	if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.Signal = ws.Signal()
		if ctx.Err() != nil {
			return res, fmt.Errorf("run %s: timed out after %s", res.CommandLine(), DefaultTimeout)
		}
		return res, fmt.Errorf("run %s: killed by signal %v\nstderr:\n%s", res.CommandLine(), res.Signal, res.Stderr)
	}
	return res, nil
}

// MustSucceed runs argv and turns a non-zero exit into an error carrying
// stderr; for helper tools (sfdisk, losetup) whose failure is a harness error.
func MustSucceed(ctx context.Context, argv ...string) (Result, error) {
	res, err := Run(ctx, nil, argv...)
	if err != nil {
		return res, err
	}
	if res.ExitCode != 0 {
		return res, fmt.Errorf("%s: exit %d\n%s", res.CommandLine(), res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	return res, nil
}

// toolEnv is the environment every tool gets: the caller's, minus settings
// that would change systemd-repart's or sprout's output (log colours, a
// pager, a TTY width), plus a fixed C locale for stable messages.
func toolEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "LANG", name == "LANGUAGE", strings.HasPrefix(name, "LC_"),
			name == "PAGER", name == "COLUMNS", name == "LINES",
			strings.HasPrefix(name, "SYSTEMD_"):
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C", "SYSTEMD_PAGER=cat", "SYSTEMD_COLORS=0", "SYSTEMD_LOG_COLOR=0")
}

// ShellJoin quotes argv for a POSIX shell.
func ShellJoin(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		parts[i] = shellQuote(a)
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// AppendLine appends line to the file at path (created if missing): the
// summary files make test prints after a tier.
func AppendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(f, line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
