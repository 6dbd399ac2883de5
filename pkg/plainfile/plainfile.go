// Package plainfile reads small files (definitions, sysfs and procfs
// attributes, /etc/machine-id) without an os.File.
//
// Opening any file through os marks it for the runtime's poller, and the
// first one sets the poller up: an epoll instance, an eventfd and a
// registration attempt per file, plus fcntl calls — a cost every boot's
// no-op run would pay for files the poller cannot use (docs/benchmarks.md).
package plainfile

import (
	"os"
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
