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

// unitValues reads a unit file's KEY=value lines (comments skipped); a key
// given several times keeps every value, in order.
func unitValues(t *testing.T, path string) map[string][]string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := map[string][]string{}
	for _, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		if k, val, ok := strings.Cut(line, "="); ok {
			v[k] = append(v[k], val)
		}
	}
	return v
}

// manSection returns the text of one "# NAME" section of a man page source.
func manSection(src, name string) string {
	_, rest, ok := strings.Cut(src, "\n# "+name+"\n")
	if !ok {
		return ""
	}
	if i := strings.Index(rest, "\n# "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// TestServiceManPageMatchesUnit: sprout.service(8) says what the unit, the
// Makefile and the two shell integrations do — the command, the exit
// status that is success, that it runs only in an initrd, where it is
// installed, and the one failure policy — so none can change alone.
func TestServiceManPageMatchesUnit(t *testing.T) {
	unit := unitValues(t, "../../systemd-units/sprout.service")
	b, err := os.ReadFile("../../docs/man/sprout.service.8.md")
	if err != nil {
		t.Fatal(err)
	}
	man := string(b)
	flat := strings.Join(strings.Fields(man), " ") // the man page's lines are wrapped
	mentions := func(what, s string) {
		t.Helper()
		if !strings.Contains(flat, s) {
			t.Errorf("docs/man/sprout.service.8.md does not say %s (%q)", what, s)
		}
	}

	exec := unit["ExecStart"]
	if len(exec) != 1 || !strings.HasPrefix(exec[0], "/usr/bin/sprout ") {
		t.Fatalf("ExecStart=%v: want one /usr/bin/sprout command line", exec)
	}
	mentions("the unit's command", "The unit runs **"+strings.TrimPrefix(exec[0], "/usr/bin/")+"**")
	for _, code := range unit["SuccessExitStatus"] {
		mentions("which exit status counts as success", "Exit status "+code)
	}
	if got := unit["ConditionPathExists"]; !slices.Contains(got, "/etc/initrd-release") {
		t.Errorf("the unit has ConditionPathExists=%v; it must run only in an initrd (/etc/initrd-release)", got)
	}
	mentions("that it runs only in an initrd", "*ConditionPathExists=/etc/initrd-release*")

	// Where make install (and so the .deb) puts the unit, and the FILES
	// section that names it.
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), "systemd-units/sprout.service $(DESTDIR)$(DRACUTDIR)/90sprout/sprout.service") {
		t.Error("make install no longer puts the unit into the dracut module (90sprout/sprout.service)")
	}
	files := strings.Join(strings.Fields(manSection(man, "FILES")), " ")
	if !strings.Contains(files, "*/usr/lib/dracut/modules.d/90sprout/*") || !strings.Contains(files, "*sprout.service*") {
		t.Errorf("FILES does not name the unit inside the dracut module:\n%s", files)
	}

	// One failure policy: the unit, the dracut hook and the initramfs-tools
	// script all stop the boot, and FAILURE says how each does.
	failure := strings.Join(strings.Fields(manSection(man, "FAILURE")), " ")
	if failure == "" {
		t.Fatal("docs/man/sprout.service.8.md has no FAILURE section")
	}
	onFailure := unit["OnFailure"]
	if len(onFailure) != 1 || onFailure[0] != "emergency.target" {
		t.Errorf("OnFailure=%v: the policy is that a failure stops the boot (emergency.target)", onFailure)
	}
	for _, k := range []string{"OnFailure", "OnFailureJobMode"} {
		if v := unit[k]; len(v) == 1 && !strings.Contains(failure, "*"+k+"="+v[0]+"*") {
			t.Errorf("FAILURE does not name the unit's %s=%s", k, v[0])
		}
	}
	for _, s := range []struct{ script, call string }{
		{"../../initrd/dracut/90sprout/sprout-pre-mount.sh", "die"},
		{"../../initrd/initramfs-tools/scripts/local-premount/sprout", "panic"},
	} {
		src, err := os.ReadFile(s.script)
		if err != nil {
			t.Fatal(err)
		}
		// The branch for a failed run: "*)" up to ";;" after sprout ran
		// (the unit's command line, which the script runs; then rc=$?).
		_, after, _ := strings.Cut(string(src), "rc=$?")
		_, branch, _ := strings.Cut(after, "*)")
		branch, _, _ = strings.Cut(branch, ";;")
		if !regexp.MustCompile(`(?m)(^|\)|\s)` + s.call + ` "sprout failed`).MatchString(branch) {
			t.Errorf("%s: a failed run does not stop the boot with %s:\n%s", s.script, s.call, branch)
		}
		if !strings.Contains(failure, "**"+s.call+"**") {
			t.Errorf("FAILURE does not say that %s calls **%s**", s.script, s.call)
		}
	}
	if strings.Contains(flat, "boot goes on with the partitions") || strings.Contains(flat, "is logged and the boot") {
		t.Error("docs/man/sprout.service.8.md still says a failure lets the boot go on")
	}
}
