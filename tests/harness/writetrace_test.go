//go:build linux

package harness

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// ddScript writes blocks 1..3 with one dd and 5..6 with another (a child
// of a child), interleaved with output on stderr that must not count.
const ddScript = `set -e
dd if=/dev/urandom of="$1" bs=4096 seek=1 count=3 conv=notrunc status=none
echo noise >&2
dd if=/dev/urandom of="$1" bs=4096 seek=5 count=2 conv=notrunc oflag=direct status=none`

func traceDD(t *testing.T, img string, spec TraceSpec) *TraceResult {
	t.Helper()
	RequireTools(t, "sh", "dd")
	spec.Argv = []string{"sh", "-c", ddScript, "sh", img}
	spec.Image = img
	res, err := TraceWrites(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Untraceable) > 0 {
		t.Fatalf("untraceable: %v", res.Untraceable)
	}
	return res
}

func TestTraceWritesCountsOnlyDiskWrites(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := CreateSparse(img, 1<<20); err != nil {
		t.Fatal(err)
	}
	res := traceDD(t, img, TraceSpec{})
	if res.ExitCode != 0 || !strings.Contains(res.Stderr, "noise") {
		t.Fatalf("exit %d, stderr %q", res.ExitCode, res.Stderr)
	}
	var got []int64
	for _, w := range res.Writes {
		if w.Length != 4096 || w.Comm != "dd" {
			t.Errorf("unexpected write %v", w)
		}
		got = append(got, w.Offset/4096)
	}
	if want := []int64{1, 2, 3, 5, 6}; !equalInts(got, want) {
		t.Fatalf("blocks written %v, want %v (%v)", got, want, res.Writes)
	}
}

func TestTraceWritesKillsBeforeTheKthWrite(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if err := CreateSparse(img, 1<<20); err != nil {
		t.Fatal(err)
	}
	res := traceDD(t, img, TraceSpec{KillAt: 4})
	if res.Killed == nil || res.Killed.Offset != 5*4096 || len(res.Writes) != 3 {
		t.Fatalf("killed at %v after %d writes, want block 5 after 3", res.Killed, len(res.Writes))
	}
	if res.Signal != syscall.SIGKILL {
		t.Errorf("root ended with exit %d signal %v, want SIGKILL", res.ExitCode, res.Signal)
	}
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, 4096)
	for blk := 0; blk < 8; blk++ {
		written := blk >= 1 && blk <= 3
		if isZero := bytes.Equal(data[blk*4096:(blk+1)*4096], zero); isZero == written {
			t.Errorf("block %d: written=%v, want %v", blk, !isZero, written)
		}
	}
}

func TestTraceWritesKillWriterOnly(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := CreateSparse(img, 1<<20); err != nil {
		t.Fatal(err)
	}
	// The first dd dies at its second write; set -e makes sh stop, so
	// the second dd never runs.
	res := traceDD(t, img, TraceSpec{KillAt: 2, KillWriterOnly: true})
	if res.Killed == nil || res.Killed.Offset != 2*4096 || len(res.Writes) != 1 {
		t.Fatalf("killed at %v after %v", res.Killed, res.Writes)
	}
	if res.ExitCode == 0 || res.Signal != 0 {
		t.Errorf("sh: exit %d signal %v, want a non-zero exit", res.ExitCode, res.Signal)
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMain(m *testing.M) {
	TraceeMain()
	os.Exit(m.Run())
}
