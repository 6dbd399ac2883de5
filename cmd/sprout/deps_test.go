package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// importBudget lists packages whose initialisation, background threads or
// size every boot's no-op run pays for, and the only packages in sprout's
// binary allowed to import them (docs/benchmarks.md, "no-op ÷ Go floor").
// A new importer fails the test: find a lighter way, or measure the no-op
// against the Go floor (make bench) and extend the list with a reason.
var importBudget = map[string][]string{
	// google/uuid imports net for node IDs (version 1 UUIDs), which sprout
	// never makes; go-systemd's journal and daemon packages (the design's
	// choice, issue 19) open their datagram sockets with it, and only the
	// logger, which runs them only under systemd, imports those.
	"net": {"github.com/google/uuid", "github.com/coreos/go-systemd/v22/journal",
		"github.com/coreos/go-systemd/v22/daemon"},
	"github.com/coreos/go-systemd/v22/journal": {"github.com/sprout-initrd/sprout/pkg/cli"},
	"github.com/coreos/go-systemd/v22/daemon":  {"github.com/sprout-initrd/sprout/pkg/cli"},
	"net/http":    nil,
	"crypto/tls":  nil,
	"os/user":     nil,
	"crypto/rand": {"github.com/google/uuid"},
	"math/big":    {"crypto/rand"},
	// --json output (of a run, and of --initrd-needs), and the
	// FactoryResetRequest EFI variable (258), a JSON object decoded only
	// when it exists. uuid links the package anyway, so none of them adds
	// to what every run initialises.
	"encoding/json": {"github.com/google/uuid", "github.com/sprout-initrd/sprout/pkg/report",
		"github.com/sprout-initrd/sprout/pkg/initrdneeds", "github.com/sprout-initrd/sprout/pkg/discover"},
	// Signal handlers are installed only when a run is about to write.
	"os/signal": {"github.com/sprout-initrd/sprout/pkg/cli"},
	// mkfs is the only program sprout starts.
	"os/exec": {"github.com/sprout-initrd/sprout/pkg/mkfs"},
}

func TestImportsStayWithinTheNoOpBudget(t *testing.T) {
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goCmd); err != nil {
		goCmd = "go"
	}
	cmd := exec.Command(goCmd, "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	importers := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		for _, imp := range f[1:] {
			importers[imp] = append(importers[imp], f[0])
		}
	}
	if len(importers["github.com/sprout-initrd/sprout/pkg/cli"]) == 0 {
		t.Fatalf("go list output does not show cmd/sprout importing pkg/cli:\n%s", out)
	}
	for pkg, allowed := range importBudget {
		for _, by := range importers[pkg] {
			if !slices.Contains(allowed, by) {
				t.Errorf("%s imports %s, which the no-op path must not pay for (allowed importers: %v)", by, pkg, allowed)
			}
		}
	}
}
