package loop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// These tests watch sprout's system calls with strace: what it writes
// where, in which order, and that a run with nothing to do writes nothing.

// syscall is one traced call (its start; "resumed" lines are skipped).
type syscall struct {
	Line   int
	PID    int
	Name   string
	Args   string // everything after "name(", including the result
	FD     int    // first argument when it is a file descriptor, else -1
	FDPath string // that descriptor's path, from strace -y
}

// trace is a sprout run under strace -f.
type trace struct {
	calls    []syscall
	children map[int]string // pid → program, for processes sprout started
}

var (
	callRE  = regexp.MustCompile(`^(\d+) +([a-z0-9_]+)\((.*)$`)
	fdRE    = regexp.MustCompile(`^(\d+)<([^>]*)>`)
	execRE  = regexp.MustCompile(`^"([^"]*)"`)
	writeRE = regexp.MustCompile(`, (\d+), (\d+)(?:\) = | <unfinished)`)
	blkpgRE = regexp.MustCompile(`op=(BLKPG_[A-Z_]+).*start=(\d+), length=(\d+), pno=(\d+)`)
	openRE  = regexp.MustCompile(`^[^,]*, "([^"]*)", ([A-Z_|]+)`)
	// changingIoctlRE matches ioctls that change a disk or the kernel's
	// view of it, or make loop devices (queries such as BLKGETSIZE64 or
	// BLKDISCARDZEROES do not match).
	changingIoctlRE = regexp.MustCompile(`\b(BLKPG|BLKDISCARD|BLKZEROOUT|BLKSECDISCARD|BLKRRPART|BLKFLSBUF|LOOP_[A-Z_]+)\b`)
)

// traceSprout runs sprout with args under strace.
func traceSprout(t *testing.T, args ...string) (*trace, harness.Result) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "strace.txt")
	argv := append([]string{"strace", "-f", "-y", "-q", "-s", "0", "-o", out,
		"-e", "trace=openat,open,creat,pwrite64,pwritev,pwritev2,write,writev,fsync,fdatasync,sync_file_range,ioctl,flock,close,execve,fallocate,copy_file_range",
		theTier.sprout}, args...)
	res, err := harness.Run(context.Background(), nil, argv...)
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	tr := &trace{children: map[int]string{}}
	for i, line := range strings.Split(string(text), "\n") {
		m := callRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		c := syscall{Line: i + 1, PID: pid, Name: m[2], Args: m[3], FD: -1}
		if f := fdRE.FindStringSubmatch(c.Args); f != nil {
			c.FD, _ = strconv.Atoi(f[1])
			c.FDPath = f[2]
		}
		if c.Name == "execve" {
			if p := execRE.FindStringSubmatch(c.Args); p != nil && p[1] != theTier.sprout {
				tr.children[pid] = p[1]
			}
		}
		tr.calls = append(tr.calls, c)
	}
	if len(tr.calls) == 0 {
		t.Fatalf("strace recorded nothing:\n%s", res.Stderr)
	}
	return tr, res
}

// own reports whether c was made by sprout itself (not by a program it ran).
func (tr *trace) own(c syscall) bool {
	_, child := tr.children[c.PID]
	return !child
}

// writeRange returns offset and length of a pwrite64.
func writeRange(c syscall) (off, n int64, ok bool) {
	all := writeRE.FindAllStringSubmatch(c.Args, -1)
	if c.Name != "pwrite64" || len(all) == 0 {
		return 0, 0, false
	}
	m := all[len(all)-1]
	n, _ = strconv.ParseInt(m[1], 10, 64)
	off, _ = strconv.ParseInt(m[2], 10, 64)
	return off, n, true
}

// openFlags returns the path and flags of an openat/open.
func openFlags(c syscall) (path, flags string) {
	args := c.Args
	if c.Name == "open" {
		args = "x, " + args
	}
	if m := openRE.FindStringSubmatch(args); m != nil {
		return m[1], m[2]
	}
	return "", ""
}

type byteRange struct{ Start, End int64 }

func (r byteRange) contains(off, n int64) bool { return off >= r.Start && off+n <= r.End }
func (r byteRange) overlaps(off, n int64) bool { return off < r.End && r.Start < off+n }

func partitionRange(tb *harness.Table, p harness.Partition) byteRange {
	return byteRange{p.StartBytes(tb), p.StartBytes(tb) + p.SizeBytes(tb)}
}

// gptWrite is one of the table writes, in the order they must happen.
type gptWrite struct {
	what   string
	offset int64
}

// The first run, watched write by write: the lock is taken first; on this
// grown disk the old table is written with its backup moved to the end;
// the new partitions' ranges are wiped, discarded and formatted while no
// table entry points at them; then the new table is written backup first,
// with an fsync after every write; then the kernel is told; the lock is
// held until then. No byte of an existing partition is written.
func TestFirstRunWritesInCrashSafeOrder(t *testing.T) {
	begin(t, "strace")
	for _, ss := range []int{512, 4096} {
		t.Run(fmt.Sprintf("%d-byte-sectors", ss), func(t *testing.T) {
			d := seedDisk(t, ss)
			before := d.table(t)
			tr, res := traceSprout(t, sproutArgs(t, d, "seed-defs")...)
			if res.ExitCode != 0 {
				t.Fatalf("sprout: exit %d\n%s", res.ExitCode, res.Stderr)
			}
			checkCrashSafeOrder(t, tr, d, before, d.table(t))
		})
	}
}

func checkCrashSafeOrder(t *testing.T, tr *trace, d *loopDisk, before, after *harness.Table) {
	ss := int64(d.SectorSize)
	size, err := harness.Size(d.Backing)
	if err != nil {
		t.Fatal(err)
	}
	lastLBA := size/ss - 1
	const arrayBytes = 128 * 128
	table := []gptWrite{
		{"backup entry array", (lastLBA - arrayBytes/ss) * ss},
		{"backup header", lastLBA * ss},
		{"primary entry array", 2 * ss},
		{"primary header", ss},
		{"protective MBR", 446},
	}
	// The disk grew: the old table is first written with its backup moved
	// to the end (the old backup lies in a new partition's range), then the
	// new ranges are prepared, then the new table is written.
	want := append(append([]gptWrite(nil), table...), table...)
	relocated := func(done int) bool { return done >= len(table) }
	var existing, added []byteRange
	for _, p := range after.Partitions {
		r := partitionRange(after, p)
		isOld := false
		for _, q := range before.Partitions {
			isOld = isOld || q.Entry == p.Entry
		}
		if isOld {
			existing = append(existing, r)
		} else {
			added = append(added, r)
		}
	}
	inNew := func(off, n int64) bool {
		for _, r := range added {
			if r.contains(off, n) {
				return true
			}
		}
		return false
	}

	var (
		lockFD, lockLine, unlockLine = -1, 0, 0
		firstWrite, firstTable       int // line numbers
		lastPrepare, lastChild       int
		firstChild, relocationDone   int
		lastBLKPG, lastSync          int
		tableDone                    int // table writes seen
		pendingSync                  bool
		blkpgAdds                    = map[int]string{}
	)
	for pid := range tr.children {
		for _, c := range tr.calls {
			if c.PID == pid {
				lastChild = max(lastChild, c.Line)
				if firstChild == 0 || c.Line < firstChild {
					firstChild = c.Line
				}
			}
		}
	}
	if len(tr.children) < 2 {
		t.Errorf("expected mkfs to run for home and var, saw programs %v", tr.children)
	}
	for _, c := range tr.calls {
		onDisk := c.FDPath == d.Dev && tr.own(c)
		switch {
		case c.Name == "openat" || c.Name == "open":
			if path, flags := openFlags(c); path == d.Dev && strings.Contains(flags, "O_EXCL") {
				t.Errorf("line %d: %s opened O_EXCL (a partition may be mounted): %s", c.Line, d.Dev, c.Args)
			}
		case onDisk && c.Name == "flock" && strings.Contains(c.Args, "LOCK_EX"):
			if lockFD < 0 {
				lockFD, lockLine = c.FD, c.Line
			}
		case onDisk && c.Name == "close" && c.FD == lockFD && unlockLine == 0:
			unlockLine = c.Line
		case onDisk && (c.Name == "fsync" || c.Name == "fdatasync"):
			pendingSync = false
			lastSync = c.Line
		case onDisk && c.Name == "ioctl" && strings.Contains(c.Args, "BLKDISCARD"):
			var off, n int64
			fmt.Sscanf(c.Args[strings.Index(c.Args, "[")+1:], "%d, %d", &off, &n)
			if !inNew(off, n) {
				t.Errorf("line %d: discard of [%d, %d) is not inside a new partition", c.Line, off, off+n)
			}
			if firstTable > 0 {
				t.Errorf("line %d: discard after the table write began", c.Line)
			}
			if !relocated(tableDone) {
				t.Errorf("line %d: discard before the old table was relocated", c.Line)
			}
			lastPrepare = c.Line
		case onDisk && c.Name == "ioctl" && strings.Contains(c.Args, "BLKPG"):
			m := blkpgRE.FindStringSubmatch(c.Args)
			if m == nil || m[1] != "BLKPG_ADD_PARTITION" {
				t.Errorf("line %d: unexpected BLKPG call on a disk whose partitions only get added: %s", c.Line, c.Args)
				continue
			}
			blkpgAdds[atoi(m[4])] = m[2] + "+" + m[3]
			if tableDone < len(want) || pendingSync {
				t.Errorf("line %d: kernel told before the table was written and synced", c.Line)
			}
			lastBLKPG = c.Line
		case onDisk && c.Name == "ioctl" && strings.Contains(c.Args, "BLKRRPART"):
			t.Errorf("line %d: BLKRRPART used", c.Line)
		case onDisk && strings.HasPrefix(c.Name, "pwrite") || onDisk && strings.HasPrefix(c.Name, "write"):
			off, n, ok := writeRange(c)
			if !ok {
				t.Errorf("line %d: write to %s without an offset: %s", c.Line, d.Dev, c.Args)
				continue
			}
			if firstWrite == 0 {
				firstWrite = c.Line
			}
			for _, r := range existing {
				if r.overlaps(off, n) {
					t.Errorf("line %d: write of [%d, %d) inside an existing partition [%d, %d)", c.Line, off, off+n, r.Start, r.End)
				}
			}
			if inNew(off, n) {
				if firstTable > 0 {
					t.Errorf("line %d: write into a new partition's range after the table write began", c.Line)
				}
				if !relocated(tableDone) {
					t.Errorf("line %d: write into a new partition's range before the old table was relocated", c.Line)
				}
				lastPrepare = c.Line
				continue
			}
			if tableDone >= len(want) || off != want[tableDone].offset {
				t.Errorf("line %d: unexpected write of %d bytes at %d (expected table writes, in order: %v; %d done)", c.Line, n, off, want, tableDone)
				continue
			}
			if pendingSync {
				t.Errorf("line %d: %s written without an fsync after the %s", c.Line, want[tableDone].what, want[tableDone-1].what)
			}
			if tableDone == len(table) {
				firstTable = c.Line // the new table's first write
			}
			tableDone++
			if tableDone == len(table) {
				relocationDone = c.Line
			}
			pendingSync = true
		}
	}

	switch {
	case lockFD < 0:
		t.Errorf("no flock(LOCK_EX) on %s", d.Dev)
	case firstWrite > 0 && lockLine > firstWrite:
		t.Errorf("lock taken (line %d) after the first write (line %d)", lockLine, firstWrite)
	case unlockLine == 0 || unlockLine < lastBLKPG:
		t.Errorf("lock released at line %d, before the kernel was told (line %d)", unlockLine, lastBLKPG)
	}
	if tableDone != len(want) {
		t.Errorf("%d of %d table writes seen (%v)", tableDone, len(want), want)
	}
	if pendingSync || lastSync < firstTable {
		t.Errorf("no fsync after the last table write")
	}
	if lastPrepare == 0 {
		t.Errorf("no wipe or discard of the new partitions' ranges seen")
	}
	if firstTable > 0 && lastChild > firstTable {
		t.Errorf("mkfs still ran (line %d) after the table write began (line %d)", lastChild, firstTable)
	}
	if firstChild > 0 && firstChild < relocationDone {
		t.Errorf("mkfs started (line %d) before the old table was relocated (line %d)", firstChild, relocationDone)
	}
	for _, p := range after.Partitions {
		r := partitionRange(after, p)
		isNew := inNew(r.Start, r.End-r.Start)
		got, told := blkpgAdds[p.Entry]
		if isNew && !told {
			t.Errorf("kernel not told about new partition %d", p.Entry)
		}
		if told && got != fmt.Sprintf("%d+%d", r.Start, r.End-r.Start) {
			t.Errorf("partition %d: BLKPG add %s, table says %d+%d", p.Entry, got, r.Start, r.End-r.Start)
		}
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// checkNoWrites fails on anything in the trace that could change a block
// device: an open for writing, a write, a discard or partition ioctl, an
// fsync, or a program started. It also requires that the trace saw the
// device being opened and locked, so that it cannot pass on an empty trace.
func checkNoWrites(t *testing.T, tr *trace, d *loopDisk, lock string) {
	t.Helper()
	sawOpen, sawLock := false, false
	for _, c := range tr.calls {
		dev := strings.HasPrefix(c.FDPath, "/dev/")
		switch {
		case c.Name == "openat" || c.Name == "open" || c.Name == "creat":
			path, flags := openFlags(c)
			if strings.HasPrefix(path, "/dev/") && (strings.Contains(flags, "O_RDWR") || strings.Contains(flags, "O_WRONLY")) || c.Name == "creat" {
				t.Errorf("line %d: opened for writing: %s(%s", c.Line, c.Name, c.Args)
			}
			sawOpen = sawOpen || path == d.Dev
		case c.Name == "flock" && c.FDPath == d.Dev:
			sawLock = sawLock || strings.Contains(c.Args, lock)
		case dev && (strings.HasPrefix(c.Name, "pwrite") || strings.HasPrefix(c.Name, "write") ||
			c.Name == "fsync" || c.Name == "fdatasync" || c.Name == "sync_file_range" || c.Name == "fallocate" || c.Name == "copy_file_range"):
			t.Errorf("line %d: %s(%s", c.Line, c.Name, c.Args)
		case c.Name == "ioctl" && changingIoctlRE.MatchString(c.Args):
			t.Errorf("line %d: ioctl(%s", c.Line, c.Args)
		}
	}
	if len(tr.children) > 0 {
		t.Errorf("programs were started: %v", tr.children)
	}
	if !sawOpen || !sawLock {
		t.Errorf("the trace does not show %s being opened (%v) and locked with %s (%v)", d.Dev, sawOpen, lock, sawLock)
	}
}

// A second boot: the disk already matches, so sprout says "No changes.",
// opens nothing for writing, makes no write, discard or partition ioctl,
// and every byte of the device is as before.
func TestSecondRunIsANoOpWithZeroWriteSyscallsAndIdenticalBytes(t *testing.T) {
	begin(t, "strace")
	d := seedDisk(t, 4096)
	apply(t, d, "seed-defs")
	before := d.hash(t)

	tr, res := traceSprout(t, sproutArgs(t, d, "seed-defs")...)

	if res.ExitCode != 0 || !strings.Contains(res.Stderr, "No changes.") {
		t.Errorf("second run: exit %d, want 0 and \"No changes.\"\n%s", res.ExitCode, res.Stderr)
	}
	checkNoWrites(t, tr, d, "LOCK_EX")
	if d.hash(t) != before {
		t.Errorf("second run changed bytes of %s", d.Dev)
	}
}

// From a rescue shell, `sprout /dev/sda` shows the plan and changes
// nothing: it takes only a shared lock and never opens for writing.
func TestDryRunOpensNothingForWriting(t *testing.T) {
	begin(t, "strace")
	d := seedDisk(t, 512)
	before := d.hash(t)

	tr, res := traceSprout(t, "--seed="+seed, "--definitions="+testdata(t, "seed-defs"), d.Dev)

	if res.ExitCode != 0 || !strings.Contains(res.Stderr, "Dry run: nothing was written") {
		t.Errorf("dry run: exit %d\n%s", res.ExitCode, res.Stderr)
	}
	checkNoWrites(t, tr, d, "LOCK_SH")
	if d.hash(t) != before {
		t.Errorf("dry run changed bytes of %s", d.Dev)
	}
}
