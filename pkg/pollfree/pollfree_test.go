package pollfree

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// ReadFile must return what os.ReadFile returns, errors included.
func TestReadFileMatchesOSReadFile(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{
		"empty": nil,
		"small": []byte("[Partition]\nType=home\n"),
		"large": bytes.Repeat([]byte("0123456789abcdef"), 10000),
		"exact": bytes.Repeat([]byte("x"), 512),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// procfs reports size 0 for files with content; sysfs a page.
	paths := []string{"/proc/self/mountinfo", "/proc/cmdline", "/sys/kernel/mm/transparent_hugepage/enabled", dir, filepath.Join(dir, "absent")}
	for name := range files {
		paths = append(paths, filepath.Join(dir, name))
	}
	for _, p := range paths {
		want, wantErr := os.ReadFile(p)
		got, err := ReadFile(p)
		if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
			t.Errorf("%s: error %v, os.ReadFile %v", p, err, wantErr)
		}
		if !bytes.Equal(got, want) && !strings.HasPrefix(p, "/proc/self") {
			t.Errorf("%s: read %d bytes, os.ReadFile %d", p, len(got), len(want))
		}
	}
	_, err := ReadFile(filepath.Join(dir, "absent"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v does not wrap fs.ErrNotExist", err)
	}
	if _, err := ReadFile(dir); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("directory: %v, want EISDIR", err)
	}
}
