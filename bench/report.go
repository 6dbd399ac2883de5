package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// row is one line of the table.
type row struct {
	what           string
	runs           string
	sprout, repart string
	ratio          string
	target         string
	result         string
}

// addTiming adds a side-by-side wall-time row; target is the highest
// acceptable ratio (0: none).
func (b *bench) addTiming(what string, p pair, target float64, verdict string) {
	ms1, ms2 := median(p.sprout), median(p.repart)
	r := row{
		what:   what,
		runs:   fmt.Sprintf("%d+%d", len(p.sprout), len(p.repart)),
		sprout: ms(ms1), repart: ms(ms2),
	}
	if len(p.sprout) == 0 || len(p.repart) == 0 {
		r.sprout, r.repart = "—", "—"
	} else {
		q := ratio(ms1, ms2)
		r.ratio = fmt.Sprintf("%.2f", q)
		if target > 0 {
			r.target = fmt.Sprintf("≤ %.2f", target)
			r.result = judge(q, target)
		}
	}
	if verdict != "" {
		r.result = verdict
	}
	b.rows = append(b.rows, r)
}

// judge says whether value meets "≤ target", and by how much it misses.
func judge(value, target float64) string {
	if value <= target {
		return "met"
	}
	return fmt.Sprintf("MISSED by %.0f%% (%.2f > %.2f)", (value/target-1)*100, value, target)
}

// addGrowth adds a row comparing the medians of two sizes.
func (b *bench) addGrowth(what string, small, large pair) {
	gs := ratio(median(large.sprout), median(small.sprout))
	gr := ratio(median(large.repart), median(small.repart))
	b.rows = append(b.rows, row{
		what: what, sprout: fmt.Sprintf("×%.2f", gs), repart: fmt.Sprintf("×%.2f", gr),
		target: "≈ ×1 (flat)", result: flatness(gs),
	})
}

// flatness judges a growth factor measured on a noisy machine: within
// ±25% counts as not growing.
func flatness(g float64) string {
	if g <= 1.25 {
		return "flat"
	}
	return fmt.Sprintf("GROWS ×%.2f", g)
}

// noteSpread records the spread behind a median.
func (b *bench) noteSpread(what string, p pair) {
	if len(p.sprout) < 10 {
		return
	}
	b.notes = append(b.notes, fmt.Sprintf("Spread of the %s runs (p10 / median / p90): sprout %s / %s / %s; systemd-repart %s / %s / %s.",
		what, ms(quantile(p.sprout, 0.1)), ms(median(p.sprout)), ms(quantile(p.sprout, 0.9)),
		ms(quantile(p.repart, 0.1)), ms(median(p.repart)), ms(quantile(p.repart, 0.9))))
}

// machine describes where and when the benchmark ran.
type machine struct {
	date, kernel, cpu, memory  string
	cores                      int
	loadStart, loadEnd         string
	sproutVer, repartVer, mkfs string
	goVer, workFS              string
	duration                   time.Duration
}

func describeMachine(b *bench) machine {
	m := machine{date: time.Now().Format("Mon 2 Jan 2006 15:04:05 MST"), cores: runtime.NumCPU(), loadStart: loadAverage()}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		m.kernel = utsString(u.Release[:]) + " " + utsString(u.Machine[:])
	}
	m.cpu = procField("/proc/cpuinfo", "model name")
	if kb := procField("/proc/meminfo", "MemTotal"); kb != "" {
		var n int64
		fmt.Sscan(kb, &n)
		m.memory = fmt.Sprintf("%.1f GiB", float64(n)/(1<<20))
	}
	m.sproutVer = firstLine(output(b.sprout.path, "--version"))
	m.repartVer = firstLine(output(b.repart.path, "--version"))
	m.mkfs = firstLine(output("mke2fs", "-V"))
	goCmd := os.Getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	m.goVer = firstLine(output(goCmd, "version"))
	var st syscall.Statfs_t
	m.workFS = "not tmpfs"
	if syscall.Statfs(b.work, &st) == nil && st.Type == 0x01021994 {
		m.workFS = "tmpfs"
	}
	return m
}

func utsString(a []int8) string {
	var s strings.Builder
	for _, c := range a {
		if c == 0 {
			break
		}
		s.WriteByte(byte(c))
	}
	return s.String()
}

func output(name string, args ...string) string {
	out, _ := exec.Command(name, args...).CombinedOutput()
	return strings.TrimSpace(string(out))
}

func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
		}
	}
	return ""
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// render prints the header, the table, the notes and the appendix as
// Markdown (which reads fine in a terminal, too).
func (b *bench) render() string {
	var s strings.Builder
	e := b.env
	fmt.Fprintf(&s, "## sprout vs systemd-repart — %s\n\n", e.date)
	fmt.Fprintf(&s, "- Machine: %s, %d cores, %s RAM, Linux %s\n", e.cpu, e.cores, e.memory, e.kernel)
	fmt.Fprintf(&s, "- Load average: %s at the start, %s at the end; the benchmark took %s\n", e.loadStart, e.loadEnd, e.duration)
	fmt.Fprintf(&s, "- Tools: %s; %s; %s; %s\n", e.sproutVer, e.repartVer, e.mkfs, e.goVer)
	fmt.Fprintf(&s, "- Images: sparse files on %s (%s); sprout formats them in place (`mke2fs -E offset=`), systemd-repart through a loop device\n", e.workFS, b.work)
	if b.cfg.command != "" {
		fmt.Fprintf(&s, "- Command: `` %s ``\n", b.cfg.command)
	}
	fmt.Fprintf(&s, "\nTimes are medians of wall time (fork to wait); runs alternate between the tools, each on its own identical copy.\n\n")
	fmt.Fprintf(&s, "| Measurement | Runs | sprout | systemd-repart | sprout ÷ repart | Target | Result |\n")
	fmt.Fprintf(&s, "|---|---|---|---|---|---|---|\n")
	for _, r := range b.rows {
		fmt.Fprintf(&s, "| %s | %s | %s | %s | %s | %s | %s |\n", r.what, r.runs, r.sprout, r.repart, r.ratio, r.target, r.result)
	}
	if len(b.notes) > 0 {
		s.WriteString("\nNotes:\n\n")
		for _, n := range b.notes {
			fmt.Fprintf(&s, "- %s\n", n)
		}
	}
	for _, a := range b.appendix {
		s.WriteString("\n" + a + "\n")
	}
	return s.String()
}

const (
	recordBegin = "<!-- bench:results:begin (written by make bench RECORD=1) -->"
	recordEnd   = "<!-- bench:results:end -->"
)

// recordInto replaces the results block of a Markdown file.
func recordInto(path, report string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc := string(data)
	i, j := strings.Index(doc, recordBegin), strings.Index(doc, recordEnd)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %q … %q block", path, recordBegin, recordEnd)
	}
	doc = doc[:i+len(recordBegin)] + "\n\n" + report + "\n" + doc[j:]
	return os.WriteFile(path, []byte(doc), 0o644)
}
