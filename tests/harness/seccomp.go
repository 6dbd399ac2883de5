//go:build linux

package harness

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// envTraceeArgv carries the command TraceWrites runs (JSON) to the test
// binary started as its wrapper.
const envTraceeArgv = "SPROUT_TRACEE_ARGV"

// TraceeMain must be called first in TestMain of every package that uses
// TraceWrites. In the test binary started by TraceWrites it installs the
// write filter and execs the traced command, never returning; otherwise
// it returns at once.
func TraceeMain() {
	raw, ok := os.LookupEnv(envTraceeArgv)
	if !ok {
		return
	}
	os.Unsetenv(envTraceeArgv)
	var argv []string
	if err := json.Unmarshal([]byte(raw), &argv); err != nil || len(argv) == 0 {
		fmt.Fprintf(os.Stderr, "tracee: bad %s=%q: %v\n", envTraceeArgv, raw, err)
		os.Exit(127)
	}
	path, err := exec.LookPath(argv[0])
	if err == nil {
		// The filter applies to the thread that installs it, which must
		// be the one that execs.
		runtime.LockOSThread()
		err = installWriteFilter()
	}
	if err == nil {
		err = syscall.Exec(path, argv, os.Environ())
	}
	fmt.Fprintf(os.Stderr, "tracee: %s: %v\n", argv[0], err)
	os.Exit(127)
}

// nativeAuditArch is the AUDIT_ARCH_* value of this build's syscalls.
var nativeAuditArch = map[string]uint32{
	"amd64": unix.AUDIT_ARCH_X86_64,
	"arm64": unix.AUDIT_ARCH_AARCH64,
}[runtime.GOARCH]

// tracedSyscalls are handed to the tracer unconditionally: the ones that
// write through a file descriptor, and those the tracer must refuse
// (asynchronous I/O, leaving the process group).
var tracedSyscalls = []uint32{
	unix.SYS_WRITE, unix.SYS_PWRITE64, unix.SYS_WRITEV, unix.SYS_PWRITEV, unix.SYS_PWRITEV2,
	unix.SYS_FALLOCATE, unix.SYS_FTRUNCATE, unix.SYS_COPY_FILE_RANGE, unix.SYS_SPLICE, unix.SYS_SENDFILE,
	unix.SYS_IO_SUBMIT, unix.SYS_IO_URING_SETUP, unix.SYS_SETPGID, unix.SYS_SETSID,
}

// writeFilter is the seccomp program: SECCOMP_RET_TRACE for the syscalls
// above, for ioctl(BLKDISCARD/BLKSECDISCARD/BLKZEROOUT), for a shared
// writable mmap and for any syscall of a foreign ABI; allow the rest.
func writeFilter() []unix.SockFilter {
	const (
		ldAbs  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq    = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jset   = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret    = unix.BPF_RET | unix.BPF_K
		offNr  = 0
		offArc = 4
		allow  = unix.SECCOMP_RET_ALLOW
		trace  = unix.SECCOMP_RET_TRACE
	)
	arg := func(i uint32) uint32 { return 16 + 8*i } // low 32 bits (little-endian)
	// Jumps are written with a symbolic target and resolved at the end.
	type insn struct {
		f      unix.SockFilter
		jt, jf string // label to jump to when true/false; "" = next
		label  string
	}
	var p []insn
	add := func(code uint16, k uint32, jt, jf string) {
		p = append(p, insn{f: unix.SockFilter{Code: code, K: k}, jt: jt, jf: jf})
	}
	label := func(l string) { p = append(p, insn{label: l}) }

	add(ldAbs, offArc, "", "")
	add(jeq, nativeAuditArch, "", "trace")
	add(ldAbs, offNr, "", "")
	for _, nr := range tracedSyscalls {
		add(jeq, nr, "trace", "")
	}
	add(jeq, unix.SYS_IOCTL, "ioctl", "")
	add(jeq, unix.SYS_MMAP, "mmap", "")
	add(ret, allow, "", "")
	label("ioctl")
	add(ldAbs, arg(1), "", "")
	for _, cmd := range []uint32{unix.BLKDISCARD, unix.BLKSECDISCARD, unix.BLKZEROOUT} {
		add(jeq, cmd, "trace", "")
	}
	add(ret, allow, "", "")
	label("mmap")
	add(ldAbs, arg(3), "", "")
	add(jset, unix.MAP_SHARED, "", "allow")
	add(ldAbs, arg(2), "", "")
	add(jset, unix.PROT_WRITE, "trace", "allow")
	label("allow")
	add(ret, allow, "", "")
	label("trace")
	add(ret, trace, "", "")

	// Lay out: labels take no room.
	at := map[string]int{}
	var out []insn
	for _, in := range p {
		if in.label != "" {
			at[in.label] = len(out)
			continue
		}
		out = append(out, in)
	}
	prog := make([]unix.SockFilter, len(out))
	for i, in := range out {
		f := in.f
		for _, j := range []struct {
			label string
			dst   *uint8
		}{{in.jt, &f.Jt}, {in.jf, &f.Jf}} {
			if j.label != "" {
				*j.dst = uint8(at[j.label] - i - 1)
			}
		}
		prog[i] = f
	}
	return prog
}

func installWriteFilter() error {
	if nativeAuditArch == 0 {
		return fmt.Errorf("no seccomp audit arch known for %s", runtime.GOARCH)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("PR_SET_NO_NEW_PRIVS: %w", err)
	}
	prog := writeFilter()
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): %w", errno)
	}
	return nil
}
