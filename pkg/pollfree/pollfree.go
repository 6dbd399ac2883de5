// Package pollfree reads small files (definitions, sysfs and procfs
// attributes, /etc/machine-id) and disks without an os.File, so without
// the Go runtime's poller.
//
// Why it exists: opening any file through os marks it for the runtime's
// poller, and the first one sets the poller up: an epoll instance, an
// eventfd and a registration attempt per file, plus fcntl calls — a cost
// every boot's no-op run would pay for files the poller cannot use
// (docs/benchmarks.md).
package pollfree

import (
	"errors"
	"io"
	"os"
	"slices"
	"syscall"
)

// ReadFile is os.ReadFile on a plain descriptor. Errors read like
// os.ReadFile's (*os.PathError with the same operations).
func ReadFile(path string) ([]byte, error) {
	var fd int
	for {
		var err error
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		break
	}
	defer syscall.Close(fd)
	size := 512
	var st syscall.Stat_t
	if syscall.Fstat(fd, &st) == nil && st.Size > 0 && st.Size < 1<<30 {
		size = int(st.Size) + 1 // one more byte, so the end is seen without growing
	}
	data := make([]byte, 0, size)
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		n, err := syscall.Read(fd, data[len(data):cap(data)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return data, nil
		}
		data = data[:len(data)+n]
	}
}

// File is a file or block device open for reading on a plain descriptor,
// for io.ReaderAt users such as the GPT reader.
type File struct {
	fd   int
	path string
}

// Open opens path read-only. Errors read like os.Open's.
func Open(path string) (*File, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return &File{fd: fd, path: path}, nil
	}
}

// ReadAt reads like os.File.ReadAt.
func (f *File) ReadAt(p []byte, off int64) (int, error) { return ReadAt(f.fd, f.path, p, off) }

// Close closes the descriptor.
func (f *File) Close() error {
	if err := syscall.Close(f.fd); err != nil {
		return &os.PathError{Op: "close", Path: f.path, Err: err}
	}
	return nil
}

// ReadAt reads len(p) bytes at off from the descriptor fd (named path in
// errors) like os.File.ReadAt: until p is full, io.EOF at the end.
func ReadAt(fd int, path string, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &os.PathError{Op: "readat", Path: path, Err: errors.New("negative offset")}
	}
	done := 0
	for done < len(p) {
		n, err := syscall.Pread(fd, p[done:], off+int64(done))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return done, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return done, io.EOF
		}
		done += n
	}
	return done, nil
}

// ReadDirNames returns the names in directory dir, sorted, without "."
// and "..": os.ReadDir's names, on a plain descriptor and without the
// DirEntry values. Errors read like os.ReadDir's (*os.PathError, "open"
// or "readdirent").
func ReadDirNames(dir string) ([]string, error) {
	var fd int
	for {
		var err error
		fd, err = syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: dir, Err: err}
		}
		break
	}
	defer syscall.Close(fd)
	var names []string
	buf := make([]byte, 2048)
	for {
		n, err := syscall.ReadDirent(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "readdirent", Path: dir, Err: err}
		}
		if n <= 0 {
			slices.Sort(names)
			return names, nil
		}
		_, _, names = syscall.ParseDirent(buf[:n], -1, names)
	}
}

// Stat is os.Stat's system call, without the os.FileInfo: the status of
// the file path names, symlinks followed. Errors read like os.Stat's.
func Stat(path string) (syscall.Stat_t, error) {
	var st syscall.Stat_t
	for {
		err := syscall.Stat(path, &st)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return st, &os.PathError{Op: "stat", Path: path, Err: err}
		}
		return st, nil
	}
}

// Errno is the system call's error number inside an error from this
// package (0 for any other error), to test for ENOENT and the like
// without errors.Is, whose interface check costs a no-op run more than
// the system call.
func Errno(err error) syscall.Errno {
	if pe, ok := err.(*os.PathError); ok {
		if e, ok := pe.Err.(syscall.Errno); ok {
			return e
		}
	}
	return 0
}
