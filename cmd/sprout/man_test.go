package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/pkg/cli"
)

// helpFlag matches an option line of --help: "  -h --help  …" or
// "     --dry-run=BOOL  …".
var helpFlag = regexp.MustCompile(`^\s+((?:-[a-zA-Z] )?--[a-z][a-z0-9-]*)`)

// manFlag matches a flag in an OPTIONS entry of docs/man/sprout.8.md:
// "**-h**, **--help**" or "**--dry-run=**_BOOL_".
var manFlag = regexp.MustCompile(`\*\*(--?[a-zA-Z][a-z0-9-]*)=?\*\*`)

// TestManPageListsEveryFlag: `man sprout` and `sprout --help` name the
// same flags, so neither can gain or lose one alone.
func TestManPageListsEveryFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := cli.Main(context.Background(), []string{"--help"}, cli.Env{Stdout: &out, Stderr: &errOut}); code != 0 {
		t.Fatalf("sprout --help exited %d: %s", code, errOut.String())
	}
	var help []string
	for _, line := range strings.Split(out.String(), "\n") {
		if m := helpFlag.FindStringSubmatch(line); m != nil {
			help = append(help, strings.Fields(m[1])...)
		}
	}

	src, err := os.ReadFile("../../docs/man/sprout.8.md")
	if err != nil {
		t.Fatal(err)
	}
	var man []string
	section := ""
	for _, line := range strings.Split(string(src), "\n") {
		if h, ok := strings.CutPrefix(line, "# "); ok {
			section = h
			continue
		}
		// An entry's term line starts with the flag; the definition
		// below it (indented, after ":   ") may mention other flags.
		if section != "OPTIONS" || !strings.HasPrefix(line, "**-") {
			continue
		}
		for _, m := range manFlag.FindAllStringSubmatch(line, -1) {
			man = append(man, m[1])
		}
	}

	slices.Sort(help)
	slices.Sort(man)
	if len(help) < 10 {
		t.Fatalf("found only %d flags in --help (%v): the pattern no longer matches its layout", len(help), help)
	}
	for _, f := range help {
		if !slices.Contains(man, f) {
			t.Errorf("%s is in sprout --help but not in the OPTIONS of docs/man/sprout.8.md", f)
		}
	}
	for _, f := range man {
		if !slices.Contains(help, f) {
			t.Errorf("%s is in docs/man/sprout.8.md but not in sprout --help", f)
		}
	}
	if !t.Failed() {
		t.Logf("both list %d flags: %s", len(help), strings.Join(help, " "))
	}
}
