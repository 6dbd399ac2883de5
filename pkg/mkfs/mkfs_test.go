package mkfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/sprout-initrd/sprout/pkg/fstype"
)

// image is a Target over a regular file that records its syncs.
type image struct {
	*os.File
	block bool
	syncs int
}

func (i *image) Path() string        { return i.Name() }
func (i *image) IsBlockDevice() bool { return i.block }
func (i *image) Sync() error         { i.syncs++; return i.File.Sync() }

func newImage(t *testing.T, size int64) *image {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "disk.img"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return &image{File: f}
}

// recordRuns is a Runner that records command lines instead of running
// them.
func recordRuns(calls *[][]string) Runner {
	return func(_ context.Context, args []string) error {
		*calls = append(*calls, args)
		return nil
	}
}

var id = uuid.MustParse("262afe25-c985-4002-86e6-146a18a7febd")

// InRange writes a header itself, runs a tool that takes an offset on an
// image file after a sync, and leaves the rest to a node of their own.
func TestInRange(t *testing.T) {
	const off, size = 1 << 20, 64 << 20
	var calls [][]string

	img := newImage(t, 128<<20)
	done, err := InRange(context.Background(), recordRuns(&calls), img, off, size, fstype.Request{Format: "swap", Label: "swap", UUID: id})
	if !done || err != nil || len(calls) != 0 {
		t.Fatalf("swap: done %v, %v, calls %q; want the header written, no program", done, err, calls)
	}
	if got, ok := fstype.Identify(readerAt(img, off)); !ok || got.Type != "swap" || got.UUID != id.String() {
		t.Errorf("swap: the range holds %+v, %v", got, ok)
	}

	done, err = InRange(context.Background(), recordRuns(&calls), img, off, size, fstype.Request{Format: "ext4", Label: "home", UUID: id})
	ext4, _ := fstype.Lookup("ext4")
	want := ext4.InPlaceArgs(fstype.Request{Format: "ext4", Label: "home", UUID: id}, img.Path(), off, size)
	if !done || err != nil || len(calls) != 1 || !slices.Equal(calls[0], want) || img.syncs != 1 {
		t.Errorf("ext4 on an image: done %v, %v, calls %q, %d syncs; want %q after one sync", done, err, calls, img.syncs, want)
	}

	calls = nil
	for _, c := range []struct {
		format string
		block  bool
	}{{"xfs", false}, {"ext4", true}, {"vfat", true}} {
		img.block = c.block
		done, err := InRange(context.Background(), recordRuns(&calls), img, off, size, fstype.Request{Format: c.format, UUID: id})
		if done || err != nil || len(calls) != 0 {
			t.Errorf("%s (block device %v): done %v, %v, calls %q; want it left to a node", c.format, c.block, done, err, calls)
		}
	}
	if _, err := InRange(context.Background(), recordRuns(&calls), img, off, size, fstype.Request{Format: "ntfs"}); err == nil {
		t.Error("ntfs: no error")
	}
}

// readerAt reads the image from off on.
func readerAt(img *image, off int64) *offsetReader { return &offsetReader{img.File, off} }

type offsetReader struct {
	f   *os.File
	off int64
}

func (r *offsetReader) ReadAt(p []byte, off int64) (int, error) { return r.f.ReadAt(p, r.off+off) }

// OnNode runs the declared command line on the node, or writes the header
// over the whole node.
func TestOnNode(t *testing.T) {
	var calls [][]string
	req := fstype.Request{Format: "vfat", Label: "esp", UUID: id}
	if err := OnNode(context.Background(), recordRuns(&calls), "/dev/loop9", req); err != nil {
		t.Fatal(err)
	}
	vfat, _ := fstype.Lookup("vfat")
	if want := vfat.Args(req, "/dev/loop9"); len(calls) != 1 || !slices.Equal(calls[0], want) {
		t.Errorf("vfat: calls %q, want %q", calls, want)
	}

	node := newImage(t, 40960)
	calls = nil
	if err := OnNode(context.Background(), recordRuns(&calls), node.Path(), fstype.Request{Format: "swap", Label: "s", UUID: id}); err != nil || len(calls) != 0 {
		t.Fatalf("swap: %v, calls %q", err, calls)
	}
	if got, ok := fstype.Identify(node.File); !ok || got != (fstype.Identity{Type: "swap", Label: "s", UUID: id.String()}) {
		t.Errorf("swap node holds %+v, %v", got, ok)
	}
	small := newImage(t, 4096)
	if err := OnNode(context.Background(), recordRuns(&calls), small.Path(), fstype.Request{Format: "swap", UUID: id}); err == nil || !strings.Contains(err.Error(), "too small") {
		t.Errorf("one page of swap: %v", err)
	}
}

func TestRunNamesTheCommandAndItsOutput(t *testing.T) {
	err := Run(context.Background(), []string{"sh", "-c", "echo no space >&2; exit 3"})
	var exit interface{ ExitCode() int }
	if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(err.Error(), "sh -c") || !strings.Contains(err.Error(), "no space") {
		t.Errorf("Run = %v", err)
	}
}
