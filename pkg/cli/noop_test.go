package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sprout-initrd/sprout/pkg/gpt/gpttest"
)

// imageWithStore writes the seed article's 64 MiB image grown to 128 MiB.
func imageWithStore(t *testing.T) string {
	return gpttest.SeedImage(t, 64<<20, 128<<20)
}

// homeAndVar writes definitions without Format= (no mkfs needed).
func homeAndVar(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"home.conf": "[Partition]\nType=home\nWeight=2000\n",
		"var.conf":  "[Partition]\nType=var\nWeight=1000\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runMain(t *testing.T, args ...string) (code int, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(context.Background(), args, Env{Stdout: &out, Stderr: &errOut})
	return code, errOut.String()
}

type fileState struct {
	sum   [32]byte
	mtime time.Time
}

func stateOf(t *testing.T, path string) fileState {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fileState{sha256.Sum256(b), st.ModTime()}
}

// The second boot: "No changes.", exit 0, and the image is untouched —
// same bytes and not even its modification time changed (any write would
// set it).
func TestSecondRunSaysNoChangesAndLeavesImageUntouched(t *testing.T) {
	img, defs := imageWithStore(t), homeAndVar(t)
	args := []string{"--dry-run=no", "--seed=0123456789abcdef0123456789abcdef", "--definitions=" + defs, img}
	if code, stderr := runMain(t, args...); code != 0 || !strings.Contains(stderr, "All done.") {
		t.Fatalf("first run: exit %d\n%s", code, stderr)
	}
	before := stateOf(t, img)
	time.Sleep(10 * time.Millisecond) // so that a write would show in the mtime

	code, stderr := runMain(t, args...)

	if code != 0 || !strings.Contains(stderr, "No changes.") {
		t.Errorf("second run: exit %d, want 0 and \"No changes.\"\n%s", code, stderr)
	}
	if after := stateOf(t, img); after != before {
		t.Errorf("second run changed the image (bytes equal: %v, mtime %v → %v)", after.sum == before.sum, before.mtime, after.mtime)
	}
}

// Refusals found while planning leave the image as it was.
func TestRefusedRunLeavesImageUntouched(t *testing.T) {
	cases := []struct {
		name string
		size int64  // the disk the image is on
		home string // home.conf
		want string
		flag string // one more flag
	}{
		{"image on a smaller disk", 40 << 20, "[Partition]\nType=home\n", "smaller than the GPT claims", ""},
		{"definitions that do not fit", 64 << 20, "[Partition]\nType=home\nSizeMinBytes=1G\n", "can't fit", ""},
		// The file is grown only once the plan for the grown file is accepted.
		{"--size= with definitions that do not fit", 64 << 20, "[Partition]\nType=home\nSizeMinBytes=1G\n", "can't fit", "--size=512M"},
		{"--size= with a format sprout cannot make", 64 << 20, "[Partition]\nType=home\nFormat=reiserfs\n", `cannot make a "reiserfs"`, "--size=512M"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := imageWithStore(t)
			if err := os.Truncate(img, c.size); err != nil {
				t.Fatal(err)
			}
			defs := t.TempDir()
			if err := os.WriteFile(filepath.Join(defs, "home.conf"), []byte(c.home), 0o644); err != nil {
				t.Fatal(err)
			}
			before := stateOf(t, img)
			args := []string{"--dry-run=no", "--seed=0123456789abcdef0123456789abcdef", "--definitions=" + defs, img}
			if c.flag != "" {
				args = append([]string{c.flag}, args...)
			}
			code, stderr := runMain(t, args...)
			if code == 0 || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, want a refusal mentioning %q:\n%s", code, c.want, stderr)
			}
			if after := stateOf(t, img); after != before {
				t.Errorf("refused run changed the image: %v → %v", before, after)
			}
		})
	}
}

// A refused --empty=create leaves no image file behind.
func TestRefusedCreateLeavesNoFile(t *testing.T) {
	defs := t.TempDir()
	if err := os.WriteFile(filepath.Join(defs, "home.conf"), []byte("[Partition]\nType=home\nFormat=reiserfs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "new.img")
	code, stderr := runMain(t, "--dry-run=no", "--empty=create", "--size=64M", "--definitions="+defs, img)
	if code == 0 || !strings.Contains(stderr, `cannot make a "reiserfs"`) {
		t.Errorf("exit %d, want a refusal of reiserfs:\n%s", code, stderr)
	}
	if _, err := os.Stat(img); !os.IsNotExist(err) {
		t.Errorf("the refused run left %s behind (stat: %v)", img, err)
	}
}

func (s fileState) String() string { return fmt.Sprintf("%x@%v", s.sum[:4], s.mtime) }

// The dry run lists the discard steps with the run's budget;
// --discard=no plans none; --discard-budget= sets or lifts the budget.
func TestDryRunSaysWhatIsDiscardedAndForHowLong(t *testing.T) {
	img, defs := imageWithStore(t), homeAndVar(t)
	for _, c := range []struct {
		flag, want string
		count      int
	}{
		{"", "discard budget of 10s", 2},
		{"--discard-budget=3s", "discard budget of 3s", 2},
		{"--discard-budget=infinity", "however long it takes", 2},
		{"--discard=no", "", 0},
	} {
		args := []string{"--definitions=" + defs, img}
		if c.flag != "" {
			args = append([]string{c.flag}, args...)
		}
		code, stderr := runMain(t, args...)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s", c.flag, code, stderr)
		}
		if n := strings.Count(stderr, ". discard future partition"); n != c.count || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: %d discard steps, want %d saying %q:\n%s", c.flag, n, c.count, c.want, stderr)
		}
	}
	if code, stderr := runMain(t, "--discard-budget=0", "--definitions="+defs, img); code != 1 || !strings.Contains(stderr, "--discard=no") {
		t.Errorf("--discard-budget=0: exit %d, %q; want a refusal that points to --discard=no", code, stderr)
	}
}
