//go:build linux

package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file is a small ptrace-based tracer that sees every write a
// process tree makes to one disk, in one global order, and can stop the
// tree right before the k-th of them.
//
// Why not strace's fault injection (strace -f -e inject=pwrite64:
// signal=KILL:when=K)? strace keeps the when= counter per tracee and per
// syscall: every thread gets its own copy of the counters when it first
// enters an injected syscall (strace 6.1, syscall.c tamper_with_syscall_
// entering). A Go program writes from whichever OS thread runs the
// goroutine, and mke2fs runs next to it, so "the K-th pwrite64 of some
// thread" is not "the K-th write to the disk". strace also counts writes
// to stderr and cannot kill the whole tree at once. Here the tracer is
// single-threaded: a write is counted when its thread stops at the
// syscall entry, and the thread only proceeds when the tracer lets it, so
// the count is a total order of the writes that reach the kernel.
//
// The traced command does not run directly: the test binary itself starts
// first (TraceeMain), installs a seccomp filter that hands only the
// syscalls that can write (and a few the tracer must see) to the tracer,
// and execs the command. The filter is inherited by every child (mkfs),
// and the tracer stops the tree only at those syscalls instead of at
// every one, which makes a traced run several times faster.

// DiskWrite is one system call that changes the disk's bytes.
type DiskWrite struct {
	Seq     int    // 1-based position among all disk writes of the trace
	PID     int    // process (thread group) id
	TID     int    // thread id
	Comm    string // the process's command name
	Syscall string // pwrite64, write, writev, pwritev, fallocate, BLKDISCARD, …
	Node    string // what the file descriptor is open on
	Offset  int64  // absolute byte offset on the disk
	Length  int64  // bytes affected (as requested)
	// AfterKill is set for writes made after a KillWriterOnly kill.
	AfterKill bool
}

// End is the first byte after the write.
func (w DiskWrite) End() int64 { return w.Offset + w.Length }

func (w DiskWrite) String() string {
	return fmt.Sprintf("#%d %s[%d] %s %s [%d, %d) %d bytes", w.Seq, w.Comm, w.PID, w.Syscall, w.Node, w.Offset, w.End(), w.Length)
}

// TraceSpec says what to run and when to stop it.
type TraceSpec struct {
	Argv []string
	Env  []string // added to the test's environment
	// Image is the regular file that holds the disk: a write counts when
	// its file descriptor is this file, or a block device that maps onto
	// it (a loop device backed by it, a partition of such a device, a loop
	// device backed by one of those …), and the offset is translated into
	// an offset in Image.
	Image string
	// KillAt > 0 stops the run at the entry of the KillAt-th counted
	// write, before the kernel executes it.
	KillAt int
	// Counts selects the writes KillAt counts; nil counts every disk write.
	Counts func(w DiskWrite, rootPID int) bool
	// KillWriterOnly kills only the process making that write and lets
	// the rest run on; otherwise the whole tree is killed at once.
	KillWriterOnly bool
	// Timeout bounds the run (default DefaultTimeout).
	Timeout time.Duration
}

// TraceResult is what a traced run did.
type TraceResult struct {
	PID    int         // the root process
	Writes []DiskWrite // in the order they were let through
	// Killed is the write the run was stopped at (it did not happen).
	Killed *DiskWrite
	// ExitCode is the root process's exit code, -1 when a signal ended it.
	ExitCode int
	Signal   syscall.Signal
	Stdout   string
	Stderr   string
	// Untraceable lists writes the tracer cannot account for (shared
	// writable mappings of the disk, AIO, io_uring): a trace with any is
	// not a complete list of the disk's writes.
	Untraceable []string
}

// TraceWrites runs spec.Argv under ptrace and records its disk writes.
func TraceWrites(ctx context.Context, spec TraceSpec) (*TraceResult, error) {
	if len(spec.Argv) == 0 {
		return nil, errors.New("trace writes: empty argv")
	}
	img, err := os.Stat(spec.Image)
	if err != nil {
		return nil, fmt.Errorf("trace writes: %w", err)
	}
	st, ok := img.Sys().(*syscall.Stat_t)
	if !ok || !img.Mode().IsRegular() {
		return nil, fmt.Errorf("trace writes: %s is not a regular file", spec.Image)
	}
	if spec.Timeout == 0 {
		spec.Timeout = DefaultTimeout
	}
	type outcome struct {
		res *TraceResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		// ptrace requests must come from the thread that is the tracer,
		// and the traced process must be forked by it. The thread is never
		// unlocked: Go ends it with the goroutine.
		runtime.LockOSThread()
		t := &tracer{spec: spec, image: fileID{st.Dev, st.Ino}, tracees: map[int]*tracee{}}
		res, err := t.run(ctx)
		done <- outcome{res, err}
	}()
	o := <-done
	return o.res, o.err
}

type fileID struct{ dev, ino uint64 }

type tracee struct {
	tgid  int
	fresh bool // auto-attached and not yet past its initial SIGSTOP
}

type tracer struct {
	spec    TraceSpec
	image   fileID
	root    int
	tracees map[int]*tracee
	res     TraceResult
	counted int
	killing bool // the whole tree is being killed
	execed  bool // the root has exec'ed the command
}

const ptraceOptions = unix.PTRACE_O_TRACESECCOMP | unix.PTRACE_O_TRACECLONE | unix.PTRACE_O_TRACEFORK |
	unix.PTRACE_O_TRACEVFORK | unix.PTRACE_O_TRACEEXEC | unix.PTRACE_O_EXITKILL

func (t *tracer) run(ctx context.Context) (*TraceResult, error) {
	stdout, err := os.CreateTemp("", "sprout-trace-stdout-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(stdout.Name())
	defer stdout.Close()
	stderr, err := os.CreateTemp("", "sprout-trace-stderr-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(stderr.Name())
	defer stderr.Close()

	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	argv, err := json.Marshal(t.spec.Argv)
	if err != nil {
		return nil, err
	}
	// A binary whose TestMain lacks TraceeMain runs no test and exits; the
	// missing exec is reported below.
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(append(toolEnv(), t.spec.Env...), envTraceeArgv+"="+string(argv))
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Own process group: a timeout kills the whole tree with one kill(2).
	cmd.SysProcAttr = &syscall.SysProcAttr{Ptrace: true, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("trace %s: %w", ShellJoin(t.spec.Argv), err)
	}
	defer cmd.Process.Release()
	t.root = cmd.Process.Pid
	t.res.PID = t.root
	t.tracees[t.root] = &tracee{tgid: t.root}

	// The child stops with SIGTRAP after its execve.
	var ws unix.WaitStatus
	if _, err := wait4(t.root, &ws, unix.WALL); err != nil {
		return nil, fmt.Errorf("trace: first stop: %w", err)
	}
	if !ws.Stopped() {
		return nil, fmt.Errorf("trace %s: did not stop after exec (status %#x)", t.spec.Argv[0], ws)
	}
	if err := unix.PtraceSetOptions(t.root, ptraceOptions); err != nil {
		unix.Kill(t.root, unix.SIGKILL)
		return nil, fmt.Errorf("trace: PTRACE_SETOPTIONS: %w", err)
	}
	if err := unix.PtraceCont(t.root, 0); err != nil {
		unix.Kill(t.root, unix.SIGKILL)
		return nil, fmt.Errorf("trace: PTRACE_CONT: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, t.spec.Timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { unix.Kill(-t.root, unix.SIGKILL) })
	defer stop()

	loopErr := t.loop()
	if loopErr != nil {
		unix.Kill(-t.root, unix.SIGKILL)
		t.drain()
	}
	out, _ := os.ReadFile(stdout.Name())
	errOut, _ := os.ReadFile(stderr.Name())
	t.res.Stdout, t.res.Stderr = string(out), string(errOut)
	switch {
	case loopErr != nil:
		return &t.res, fmt.Errorf("trace %s: %w", ShellJoin(t.spec.Argv), loopErr)
	case ctx.Err() != nil && t.res.Killed == nil:
		return &t.res, fmt.Errorf("trace %s: timed out after %s", ShellJoin(t.spec.Argv), t.spec.Timeout)
	case !t.execed:
		return &t.res, fmt.Errorf("trace %s: the test binary did not exec it: call harness.TraceeMain first in TestMain (exit %d)\n%s", ShellJoin(t.spec.Argv), t.res.ExitCode, t.res.Stderr)
	}
	return &t.res, nil
}

// wait4 waits for a tracee. pid is the root's pid, or minus its process
// group, which every tracee is in: waiting for any child (-1) could also
// reap a command another goroutine started from this OS thread before it
// was locked (that child's parent is this thread), stealing its exit
// status from os/exec.
func wait4(pid int, ws *unix.WaitStatus, flags int) (int, error) {
	for {
		wpid, err := unix.Wait4(pid, ws, flags|unix.WNOTHREAD, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return wpid, err
	}
}

// loop handles ptrace stops until every tracee is gone.
func (t *tracer) loop() error {
	for {
		var ws unix.WaitStatus
		pid, err := wait4(-t.root, &ws, unix.WALL)
		if errors.Is(err, unix.ECHILD) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("wait4: %w", err)
		}
		if ws.Exited() || ws.Signaled() {
			delete(t.tracees, pid)
			if pid == t.root {
				t.res.ExitCode = ws.ExitStatus()
				if ws.Signaled() {
					t.res.ExitCode, t.res.Signal = -1, ws.Signal()
				}
			}
			continue
		}
		if !ws.Stopped() {
			continue
		}
		tr := t.tracees[pid]
		if tr == nil {
			tr = t.adopt(pid)
		}
		sig := ws.StopSignal()
		switch {
		case sig == unix.SIGTRAP && ws.TrapCause() == unix.PTRACE_EVENT_SECCOMP:
			if err := t.syscallStop(pid, tr); err != nil {
				return err
			}
		case sig == unix.SIGTRAP && ws.TrapCause() > 0:
			t.event(pid, ws.TrapCause())
			resume(pid, 0)
		case sig == unix.SIGSTOP && tr.fresh:
			tr.fresh = false
			resume(pid, 0)
		default:
			// A real signal: deliver it.
			resume(pid, int(sig))
		}
	}
}

// adopt registers an auto-attached tracee (a new thread or process).
func (t *tracer) adopt(pid int) *tracee {
	tr := &tracee{tgid: tgidOf(pid), fresh: true}
	t.tracees[pid] = tr
	if t.killing {
		unix.Kill(tr.tgid, unix.SIGKILL)
	}
	return tr
}

func (t *tracer) event(pid, cause int) {
	switch cause {
	case unix.PTRACE_EVENT_FORK, unix.PTRACE_EVENT_VFORK, unix.PTRACE_EVENT_CLONE:
		msg, err := unix.PtraceGetEventMsg(pid)
		if err == nil && t.tracees[int(msg)] == nil {
			t.adopt(int(msg))
		}
	case unix.PTRACE_EVENT_EXEC:
		if pid == t.root {
			t.execed = true
		}
		// A non-leader thread that execs takes over the leader's id.
		if msg, err := unix.PtraceGetEventMsg(pid); err == nil && int(msg) != pid {
			delete(t.tracees, int(msg))
		}
	}
}

func resume(pid, sig int) {
	// ESRCH: the tracee was killed meanwhile; its exit is reported by wait4.
	unix.PtraceCont(pid, sig)
}

// drain reaps what is left after the tree was killed.
func (t *tracer) drain() {
	for {
		var ws unix.WaitStatus
		pid, err := wait4(-t.root, &ws, unix.WALL)
		if err != nil {
			return
		}
		if ws.Stopped() {
			resume(pid, 0)
		}
	}
}

// syscallInfo is struct ptrace_syscall_info (linux/ptrace.h) at a
// seccomp stop (the syscall's entry).
type syscallInfo struct {
	op   uint8
	arch uint32
	nr   uint64
	args [6]uint64
}

const (
	ptraceSyscallInfoSeccomp = 3
	syscallInfoSize          = 88
)

func getSyscallInfo(pid int) (syscallInfo, error) {
	var buf [syscallInfoSize]byte
	_, _, errno := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_GET_SYSCALL_INFO, uintptr(pid),
		uintptr(len(buf)), uintptr(unsafe.Pointer(&buf[0])), 0, 0)
	if errno != 0 {
		return syscallInfo{}, fmt.Errorf("PTRACE_GET_SYSCALL_INFO %d: %w", pid, errno)
	}
	le := binary.LittleEndian
	info := syscallInfo{op: buf[0], arch: le.Uint32(buf[4:])}
	if info.op == ptraceSyscallInfoSeccomp {
		info.nr = le.Uint64(buf[24:])
		for i := range info.args {
			info.args[i] = le.Uint64(buf[32+8*i:])
		}
	}
	return info, nil
}

func (t *tracer) syscallStop(pid int, tr *tracee) error {
	info, err := getSyscallInfo(pid)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil // killed meanwhile
		}
		return err
	}
	if info.op != ptraceSyscallInfoSeccomp {
		return fmt.Errorf("pid %d: seccomp stop without seccomp syscall info (op %d)", pid, info.op)
	}
	if info.arch != nativeAuditArch {
		t.res.Untraceable = append(t.res.Untraceable, fmt.Sprintf("pid %d: syscall of another ABI (audit arch %#x)", pid, info.arch))
		resume(pid, 0)
		return nil
	}
	w, ok, err := t.classify(pid, tr, info)
	if err != nil && dying(pid) {
		// Killed while stopped here (sprout killing its other mkfs after
		// one failed): the syscall never runs.
		return nil
	}
	if err != nil {
		return err
	}
	if !ok {
		resume(pid, 0)
		return nil
	}
	w.Seq = len(t.res.Writes) + 1
	w.AfterKill = t.res.Killed != nil
	if t.spec.KillAt > 0 && t.res.Killed == nil && (t.spec.Counts == nil || t.spec.Counts(w, t.root)) {
		t.counted++
		if t.counted == t.spec.KillAt {
			// The thread stays in its syscall-entry stop: SIGKILL ends it
			// there, so this write never reaches the kernel.
			t.res.Killed = &w
			if t.spec.KillWriterOnly {
				unix.Kill(tr.tgid, unix.SIGKILL)
				return nil
			}
			t.killAll()
			return nil
		}
	}
	t.res.Writes = append(t.res.Writes, w)
	resume(pid, 0)
	return nil
}

// killAll kills every tracee; tracees that appear later are killed when
// they first stop.
func (t *tracer) killAll() {
	t.killing = true
	unix.Kill(-t.root, unix.SIGKILL)
	for _, o := range t.tracees {
		unix.Kill(o.tgid, unix.SIGKILL)
	}
}

// classify decides whether the syscall at entry writes to the disk.
func (t *tracer) classify(pid int, tr *tracee, info syscallInfo) (DiskWrite, bool, error) {
	a := info.args
	w := DiskWrite{PID: tr.tgid, TID: pid}
	fdArg := 0
	var pos int64 = -1 // -1: the descriptor's file position
	switch info.nr {
	case unix.SYS_WRITE:
		w.Syscall, w.Length = "write", int64(a[2])
	case unix.SYS_PWRITE64:
		w.Syscall, w.Length, pos = "pwrite64", int64(a[2]), int64(a[3])
	case unix.SYS_WRITEV, unix.SYS_PWRITEV, unix.SYS_PWRITEV2:
		w.Syscall = map[uint64]string{unix.SYS_WRITEV: "writev", unix.SYS_PWRITEV: "pwritev", unix.SYS_PWRITEV2: "pwritev2"}[info.nr]
		if info.nr != unix.SYS_WRITEV {
			pos = int64(a[3])
		}
	case unix.SYS_FALLOCATE:
		w.Syscall, pos, w.Length = fmt.Sprintf("fallocate(mode %#x)", a[1]), int64(a[2]), int64(a[3])
	case unix.SYS_IOCTL:
		switch a[1] {
		case unix.BLKDISCARD:
			w.Syscall = "BLKDISCARD"
		case unix.BLKSECDISCARD:
			w.Syscall = "BLKSECDISCARD"
		case unix.BLKZEROOUT:
			w.Syscall = "BLKZEROOUT"
		default:
			return w, false, nil
		}
	case unix.SYS_COPY_FILE_RANGE, unix.SYS_SPLICE:
		fdArg = 2
		w.Syscall, w.Length = "copy_file_range", int64(a[4])
		if info.nr == unix.SYS_SPLICE {
			w.Syscall = "splice"
		}
	case unix.SYS_SENDFILE:
		w.Syscall, w.Length = "sendfile", int64(a[3])
	case unix.SYS_FTRUNCATE:
		w.Syscall, pos, w.Length = "ftruncate", int64(a[1]), 0
	case unix.SYS_MMAP: // the filter passes on shared writable mappings only
		if int64(a[4]) < 0 {
			return w, false, nil
		}
		fdArg = 4
		w.Syscall = "mmap(PROT_WRITE, MAP_SHARED)"
	case unix.SYS_SETPGID, unix.SYS_SETSID:
		// The tracer waits for the root's process group only: stop here.
		t.res.Untraceable = append(t.res.Untraceable, fmt.Sprintf("pid %d (%s): leaves the process group (syscall %d); the run was killed", pid, comm(tr.tgid), info.nr))
		t.killAll()
		return w, false, nil
	case unix.SYS_IO_SUBMIT, unix.SYS_IO_URING_SETUP:
		t.res.Untraceable = append(t.res.Untraceable, fmt.Sprintf("pid %d (%s): asynchronous I/O (syscall %d)", pid, comm(tr.tgid), info.nr))
		return w, false, nil
	default:
		return w, false, nil
	}
	fd := int(int32(a[fdArg]))
	if fd < 0 {
		return w, false, nil
	}
	node, base, onDisk, err := t.locate(pid, fd)
	if err != nil || !onDisk {
		return w, false, err
	}
	w.Node, w.Comm = node, comm(tr.tgid)
	if strings.HasPrefix(w.Syscall, "mmap") {
		t.res.Untraceable = append(t.res.Untraceable, fmt.Sprintf("pid %d (%s): writable shared mapping of %s", pid, w.Comm, node))
		return w, false, nil
	}
	switch w.Syscall {
	case "writev", "pwritev", "pwritev2":
		n, err := iovecBytes(pid, uintptr(a[1]), int(a[2]))
		if err != nil {
			return w, false, err
		}
		w.Length = n
	case "BLKDISCARD", "BLKSECDISCARD", "BLKZEROOUT":
		var rng [16]byte
		if err := readMemory(pid, uintptr(a[2]), rng[:]); err != nil {
			return w, false, err
		}
		pos, w.Length = int64(binary.LittleEndian.Uint64(rng[:])), int64(binary.LittleEndian.Uint64(rng[8:]))
	}
	if pos < 0 {
		p, err := filePosition(pid, fd)
		if err != nil {
			return w, false, err
		}
		pos = p
	}
	w.Offset = base + pos
	return w, true, nil
}

// locate says whether descriptor fd of pid writes to the image, and at
// which image offset the descriptor's offset 0 lies.
func (t *tracer) locate(pid, fd int) (node string, base int64, ok bool, err error) {
	link := fmt.Sprintf("/proc/%d/fd/%d", pid, fd)
	node, err = os.Readlink(link)
	if err != nil {
		return "", 0, false, nil // closed meanwhile: the syscall fails with EBADF
	}
	var st unix.Stat_t
	if err := unix.Stat(link, &st); err != nil {
		return node, 0, false, nil
	}
	base, ok, err = t.mapsTo(st, 0)
	return node, base, ok, err
}

// mapsTo follows a file down to the image: a block device is a partition
// of a disk (start from sysfs) or a loop device (backing file and offset).
func (t *tracer) mapsTo(st unix.Stat_t, depth int) (int64, bool, error) {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return 0, fileID{st.Dev, st.Ino} == t.image, nil
	case unix.S_IFBLK:
	default:
		return 0, false, nil
	}
	if depth > 8 {
		return 0, false, errors.New("block devices nested more than 8 deep")
	}
	sys := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	if start, err := readInt(sys + "/start"); err == nil {
		// A partition: its start is in 512-byte units of the parent disk.
		parent, err := readString(filepath.Join(sys, "..", "dev"))
		if err != nil {
			return 0, false, fmt.Errorf("parent of partition %s: %w", sys, err)
		}
		var maj, min uint32
		if _, err := fmt.Sscanf(parent, "%d:%d", &maj, &min); err != nil {
			return 0, false, fmt.Errorf("parent of partition %s: %q: %w", sys, parent, err)
		}
		pst := unix.Stat_t{Mode: unix.S_IFBLK, Rdev: unix.Mkdev(maj, min)}
		base, ok, err := t.mapsTo(pst, depth+1)
		return base + start*512, ok, err
	}
	backing, err := readString(sys + "/loop/backing_file")
	if err != nil {
		return 0, false, nil // not a loop device (or not bound): not the image
	}
	offset, err := readInt(sys + "/loop/offset")
	if err != nil {
		return 0, false, err
	}
	var bst unix.Stat_t
	if err := unix.Stat(strings.TrimSuffix(backing, " (deleted)"), &bst); err != nil {
		return 0, false, nil
	}
	base, ok, err := t.mapsTo(bst, depth+1)
	return base + offset, ok, err
}

func readString(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}

func readInt(path string) (int64, error) {
	s, err := readString(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(s, 10, 64)
}

func filePosition(pid, fd int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/fdinfo/%d", pid, fd))
	if err != nil {
		return 0, fmt.Errorf("file position of fd %d of %d: %w", fd, pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "pos:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("file position of fd %d of %d: no pos: line", fd, pid)
}

func readMemory(pid int, addr uintptr, buf []byte) error {
	local := []unix.Iovec{{Base: &buf[0]}}
	local[0].SetLen(len(buf))
	remote := []unix.RemoteIovec{{Base: addr, Len: len(buf)}}
	n, err := unix.ProcessVMReadv(pid, local, remote, 0)
	if err != nil || n != len(buf) {
		return fmt.Errorf("read %d bytes at %#x of pid %d: %d read, %v", len(buf), addr, pid, n, err)
	}
	return nil
}

// iovecBytes sums the lengths of an iovec array in the tracee.
func iovecBytes(pid int, addr uintptr, count int) (int64, error) {
	if count <= 0 || count > 1024 {
		return 0, nil
	}
	buf := make([]byte, 16*count)
	if err := readMemory(pid, addr, buf); err != nil {
		return 0, err
	}
	var n int64
	for i := 0; i < count; i++ {
		n += int64(binary.LittleEndian.Uint64(buf[16*i+8:]))
	}
	return n, nil
}

// dying reports whether a tracee has a SIGKILL pending or is gone.
func dying(tid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", tid))
	if err != nil {
		return true
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("State:")); ok {
			st := strings.TrimSpace(string(v))
			if strings.HasPrefix(st, "Z") || strings.HasPrefix(st, "X") {
				return true
			}
		}
		for _, field := range []string{"ShdPnd:", "SigPnd:"} {
			if v, ok := bytes.CutPrefix(line, []byte(field)); ok {
				mask, err := strconv.ParseUint(strings.TrimSpace(string(v)), 16, 64)
				if err == nil && mask&(1<<(unix.SIGKILL-1)) != 0 {
					return true
				}
			}
		}
	}
	return false
}

func tgidOf(tid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", tid))
	if err != nil {
		return tid
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("Tgid:")); ok {
			if n, err := strconv.Atoi(string(bytes.TrimSpace(v))); err == nil {
				return n
			}
		}
	}
	return tid
}

func comm(pid int) string {
	s, err := readString(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return "?"
	}
	return s
}
