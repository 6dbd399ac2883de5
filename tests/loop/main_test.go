package loop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// tier is what TestMain prepares once; tests only read it (the base image
// cache has its own lock).
type tier struct {
	sprout   string // binary under test
	scratch  string // cached base images
	setupErr error  // reported by every test instead of running

	mu    sync.Mutex
	bases map[string]string // "seed/4096" → base image path
}

var theTier *tier

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	scratch, err := os.MkdirTemp("", "sprout-loop-tier-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "loop tier:", err)
		return 1
	}
	defer os.RemoveAll(scratch)
	theTier = &tier{scratch: scratch, bases: map[string]string{}}
	theTier.sprout, theTier.setupErr = harness.SproutBinary(context.Background(), filepath.Join(scratch, "bin"))
	fmt.Printf("loop-device tier: %s on loop devices with 512- to 4096-byte sectors\n", theTier.sprout)
	return m.Run()
}
