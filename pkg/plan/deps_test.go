package plan_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The planner is pure: nothing it imports, directly or not, touches a
// device or starts a program. The executors and the system's readers are
// named here so that an import of one fails this test.
func TestPlannerImportsNoIO(t *testing.T) {
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goCmd); err != nil {
		goCmd = "go"
	}
	out, err := exec.Command(goCmd, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps lists only %q", deps)
	}
	const sprout = "github.com/sprout-initrd/sprout/pkg/"
	for _, dep := range deps {
		switch dep {
		case "os/exec", sprout + "blockdev", sprout + "luks", sprout + "mkfs",
			sprout + "discover", sprout + "hostfacts", sprout + "apply", sprout + "cli":
			t.Errorf("the planner depends on %s", dep)
		}
	}
}
