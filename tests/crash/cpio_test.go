package crash

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// initramfs collects the files of a Linux initramfs and writes it as a
// "newc" cpio archive (the format the kernel unpacks: a 110-byte ASCII
// header per file, name and data each padded to 4 bytes, ending with the
// entry "TRAILER!!!").
type initramfs struct {
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

func newInitramfs() *initramfs { return &initramfs{entries: map[string]cpioEntry{}} }

// add puts an entry and its parent directories into the archive.
func (r *initramfs) add(name string, e cpioEntry) {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if _, ok := r.entries[dir]; !ok {
			r.entries[dir] = cpioEntry{mode: cpioDir | 0o755}
		}
	}
	r.entries[name] = e
}

func (r *initramfs) dir(name string) { r.add(name, cpioEntry{mode: cpioDir | 0o755}) }

func (r *initramfs) file(name string, data []byte, perm uint32) {
	r.add(name, cpioEntry{mode: cpioFile | perm, data: data})
}

// copyFile adds the host file src (symlinks followed) as name.
func (r *initramfs) copyFile(name, src string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	r.add(name, cpioEntry{mode: cpioFile | uint32(st.Mode().Perm()), from: src})
	return nil
}

func (r *initramfs) symlink(name, target string) {
	r.add(name, cpioEntry{mode: cpioSymlink | 0o777, data: []byte(target)})
}

func (r *initramfs) charDevice(name string, major, minor uint32) {
	r.add(name, cpioEntry{mode: cpioChar | 0o600, major: major, minor: minor})
}

// writeTo writes the archive to path, parents before children.
func (r *initramfs) writeTo(file string) error {
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
