package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// The pieces a QEMU guest with Debian's kernel needs, shared by the
// tiers that boot one (tests/crash, tests/encrypt): the kernel, its
// modules, an initramfs with the programs and their libraries.

// FetchKernel gets Debian's kernel with the QEMU tier's script (it reuses
// an earlier download under build/qemu/kernel).
func FetchKernel(ctx context.Context) (vmlinuz, modDir string, err error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", "", err
	}
	res, err := MustSucceed(ctx, filepath.Join(root, "tests/qemu/scripts/fetch-kernel.sh"), filepath.Join(root, "build/qemu/kernel"))
	if err != nil {
		return "", "", fmt.Errorf("fetch the VM kernel: %w", err)
	}
	var kver, dir string
	for _, line := range strings.Split(res.Stdout, "\n") {
		if v, ok := strings.CutPrefix(line, "KVER="); ok {
			kver = v
		}
		if v, ok := strings.CutPrefix(line, "ROOT="); ok {
			dir = v
		}
	}
	if kver == "" || dir == "" {
		return "", "", fmt.Errorf("fetch-kernel.sh printed no KVER/ROOT:\n%s", res.Stdout)
	}
	return filepath.Join(dir, "boot", "vmlinuz-"+kver), filepath.Join(dir, "lib", "modules", kver), nil
}

// KernelModules lists the module files (relative to modDir) that load
// the wanted modules, dependencies first; built-in ones are left out.
func KernelModules(modDir string, want []string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, err
	}
	deps := map[string][]string{}
	byName := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		mod, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		base := filepath.Base(mod)
		base = base[:strings.Index(base, ".ko")]
		byName[strings.ReplaceAll(base, "-", "_")] = mod
	}
	builtin := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(modDir, "modules.builtin")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if base := filepath.Base(line); strings.Contains(base, ".ko") {
				builtin[strings.ReplaceAll(base[:strings.Index(base, ".ko")], "-", "_")] = true
			}
		}
	}
	var order []string
	seen := map[string]bool{}
	var visit func(mod string)
	visit = func(mod string) {
		if seen[mod] {
			return
		}
		seen[mod] = true
		for _, d := range deps[mod] {
			visit(d)
		}
		order = append(order, mod)
	}
	for _, w := range want {
		w = strings.ReplaceAll(w, "-", "_")
		if builtin[w] {
			continue
		}
		mod, ok := byName[w]
		if !ok {
			return nil, fmt.Errorf("module %s is not in %s/modules.dep (built in?)", w, modDir)
		}
		visit(mod)
	}
	return order, nil
}

// SharedLibraries lists the libraries (and the loader) a dynamic
// executable needs, as ldd prints them; none for a static one.
func SharedLibraries(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not a dynamic executable") || strings.Contains(string(out), "statically linked") {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %w: %s", bin, err, out)
	}
	var libs []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		for _, f := range strings.Fields(sc.Text()) {
			if strings.HasPrefix(f, "/") {
				libs = append(libs, f)
			}
		}
	}
	return libs, nil
}

// Initramfs collects the files of a Linux initramfs and writes it as a
// "newc" cpio archive (the format the kernel unpacks: a 110-byte ASCII
// header per file, name and data each padded to 4 bytes, ending with the
// entry "TRAILER!!!").
type Initramfs struct {
	entries map[string]cpioEntry
}

type cpioEntry struct {
	mode         uint32 // file type and permissions
	data         []byte // file contents or symlink target
	from         string // file contents are read from here when data is nil
	major, minor uint32 // device numbers of a device node
}

const (
	cpioDir     = 0o040000
	cpioFile    = 0o100000
	cpioSymlink = 0o120000
	cpioChar    = 0o020000
)

// NewGuestInitramfs starts a guest's initramfs: the directories PID 1
// mounts on or fills, /dev/console, and the running test binary as /init (with
// its libraries, if it has any).
func NewGuestInitramfs() (*Initramfs, error) {
	r := NewInitramfs()
	for _, d := range []string{"dev", "proc", "sys", "tmp", "run", "sbin", "etc"} {
		r.Dir(d)
	}
	r.CharDevice("dev/console", 5, 1)
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if err := r.CopyProgram("init", self); err != nil {
		return nil, err
	}
	return r, nil
}

func NewInitramfs() *Initramfs { return &Initramfs{entries: map[string]cpioEntry{}} }

// add puts an entry and its parent directories into the archive.
func (r *Initramfs) add(name string, e cpioEntry) {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if _, ok := r.entries[dir]; !ok {
			r.entries[dir] = cpioEntry{mode: cpioDir | 0o755}
		}
	}
	r.entries[name] = e
}

func (r *Initramfs) Dir(name string) { r.add(name, cpioEntry{mode: cpioDir | 0o755}) }

func (r *Initramfs) File(name string, data []byte, perm uint32) {
	r.add(name, cpioEntry{mode: cpioFile | perm, data: data})
}

// CopyFile adds the host file src (symlinks followed) as name.
func (r *Initramfs) CopyFile(name, src string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	r.add(name, cpioEntry{mode: cpioFile | uint32(st.Mode().Perm()), from: src})
	return nil
}

// CopyProgram adds the host program src as name, with every shared
// library it loads at the library's own path.
func (r *Initramfs) CopyProgram(name, src string) error {
	if err := r.CopyFile(name, src); err != nil {
		return err
	}
	libs, err := SharedLibraries(src)
	if err != nil {
		return err
	}
	for _, lib := range libs {
		if err := r.CopyFile(lib, lib); err != nil {
			return err
		}
	}
	return nil
}

func (r *Initramfs) Symlink(name, target string) {
	r.add(name, cpioEntry{mode: cpioSymlink | 0o777, data: []byte(target)})
}

func (r *Initramfs) CharDevice(name string, major, minor uint32) {
	r.add(name, cpioEntry{mode: cpioChar | 0o600, major: major, minor: minor})
}

// WriteTo writes the archive to path, parents before children.
func (r *Initramfs) WriteTo(file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	names := make([]string, 0, len(r.entries))
	for n := range r.entries {
		names = append(names, n)
	}
	sort.Strings(names) // "a" sorts before "a/b"
	ino := uint32(1)
	for _, n := range names {
		e := r.entries[n]
		data := e.data
		if data == nil && e.from != "" {
			if data, err = os.ReadFile(e.from); err != nil {
				f.Close()
				return err
			}
		}
		if err := writeCpioEntry(w, n, e, data, ino); err != nil {
			f.Close()
			return err
		}
		ino++
	}
	if err := writeCpioEntry(w, "TRAILER!!!", cpioEntry{}, nil, 0); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeCpioEntry(w io.Writer, name string, e cpioEntry, data []byte, ino uint32) error {
	nlink := uint32(1)
	if e.mode&0o170000 == cpioDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, e.mode, 0, 0, nlink, 0, len(data), 0, 0, e.major, e.minor, len(name)+1, 0)
	pad := func(n int) []byte { return make([]byte, (4-n%4)%4) }
	for _, b := range [][]byte{[]byte(hdr), []byte(name), {0}, pad(len(hdr) + len(name) + 1), data, pad(len(data))} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// LoadModule loads a kernel module file (in a guest that has no modprobe).
// StartGuest is the start of a guest's PID 1: it mounts /proc, /sys, /dev
// (devtmpfs) and tmpfs on /tmp and /run, sets PATH, and decodes the JSON
// configuration the host packed at confPath into cfg.
func StartGuest(confPath string, cfg any) error {
	for _, m := range []struct{ src, dir, fs string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/tmp", "tmpfs"}, {"tmpfs", "/run", "tmpfs"},
	} {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.src, m.dir, m.fs, 0, ""); err != nil {
			return fmt.Errorf("mount %s: %w", m.dir, err)
		}
	}
	os.Setenv("PATH", "/sbin:/bin:/usr/sbin:/usr/bin")
	data, err := os.ReadFile(confPath)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, cfg)
}

// LoadModules loads kernel module files in order (LoadModule).
func LoadModules(paths []string) error {
	for _, p := range paths {
		if err := LoadModule(p); err != nil {
			return err
		}
	}
	return nil
}

func LoadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags := 0
	if strings.HasSuffix(path, ".xz") || strings.HasSuffix(path, ".zst") {
		flags = 4 // MODULE_INIT_COMPRESSED_FILE
	}
	if err := unix.FinitModule(int(f.Fd()), "", flags); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("load %s: %w", path, err)
	}
	return nil
}
