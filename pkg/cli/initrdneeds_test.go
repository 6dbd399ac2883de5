package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func needsMain(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }})
	return code, out.String(), errOut.String()
}

// TestInitrdNeeds: the mode reads --definitions= with the real parser,
// prints lines or JSON, refuses what a run would refuse (naming
// file:line) and takes no device.
func TestInitrdNeeds(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "20-var.conf"), []byte("[Partition]\nType=var\nFormat=xfs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := needsMain("--initrd-needs", "--definitions="+dir)
	if code != 0 || !strings.Contains(out, "program\tmkfs.xfs\txfsprogs\t") || !strings.Contains(out, "definition\t"+dir+"/20-var.conf\t/etc/repart.d/20-var.conf\n") {
		t.Errorf("exit %d, stdout:\n%s\nstderr: %s", code, out, errOut)
	}

	code, out, _ = needsMain("--initrd-needs=definitions", "--json=short", "--definitions", dir)
	var doc struct {
		Programs []struct{ Name string } `json:"programs"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil || len(doc.Programs) != 1 || doc.Programs[0].Name != "mkfs.xfs" {
		t.Errorf("--json=short: exit %d, %s", code, out)
	}

	// A format sprout cannot make is accepted (the partition may exist at
	// boot, as an image's store does; a run refuses it only when it would
	// create that partition) and needs nothing in the initrd.
	if err := os.WriteFile(filepath.Join(dir, "25-store.conf"), []byte("[Partition]\nType=srv\nFormat=squashfs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = needsMain("--initrd-needs", "--definitions="+dir)
	if code != 0 || !strings.Contains(out, "format\tsquashfs\t") || strings.Contains(out, "mksquashfs") {
		t.Errorf("Format=squashfs: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if err := os.WriteFile(filepath.Join(dir, "30-bad.conf"), []byte("[Partition]\nType=srv\nMountPoint=srv\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = needsMain("--initrd-needs", "--definitions="+dir)
	if code != ExitFailure || out != "" || !strings.Contains(errOut, filepath.Join(dir, "30-bad.conf")+":3") {
		t.Errorf("MountPoint=srv: exit %d, stdout %q, stderr %q; want 1 and file:line", code, out, errOut)
	}

	if code, _, errOut = needsMain("--initrd-needs", "/dev/sda"); code != ExitFailure || !strings.Contains(errOut, "takes no device") {
		t.Errorf("with a device: exit %d, %q", code, errOut)
	}
	if code, _, _ = needsMain("--initrd-needs=some"); code != ExitFailure {
		t.Errorf("--initrd-needs=some: exit %d", code)
	}
	// The next argument is never taken as the mode's value.
	if code, _, errOut = needsMain("--initrd-needs", "all"); code != ExitFailure || !strings.Contains(errOut, "takes no device") {
		t.Errorf("--initrd-needs all: exit %d, %q", code, errOut)
	}
	if code, out, _ = needsMain("--initrd-needs=all"); code != 0 || !strings.Contains(out, "encrypt\tkey-file+tpm2\t-\n") {
		t.Errorf("--initrd-needs=all: exit %d\n%s", code, out)
	}
}

// TestNixFactsAreCurrent: initrd/nixos/needs.json, which the NixOS module
// reads, is what this binary's --initrd-needs=all --json=pretty prints
// now (make nix-facts rewrites it).
func TestNixFactsAreCurrent(t *testing.T) {
	committed, err := os.ReadFile("../../initrd/nixos/needs.json")
	if err != nil {
		t.Fatal(err)
	}
	code, now, errOut := needsMain("--initrd-needs=all", "--json=pretty")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if string(committed) != now {
		t.Errorf("initrd/nixos/needs.json differs from sprout --initrd-needs=all --json=pretty: run make nix-facts\n got %s\nwant %s", committed, now)
	}
}

// TestCompatRecordOnlyWhenPinnable: the compat record (the range an
// initrd may pin with --compat=) is there exactly when the binary takes
// --compat=.
func TestCompatRecordOnlyWhenPinnable(t *testing.T) {
	_, err := parse([]string{"--compat=252"})
	_, out, _ := needsMain("--initrd-needs=all")
	if has := strings.HasPrefix(out, "compat\t"); has != (err == nil) {
		t.Errorf("--compat= accepted: %v; compat record: %v", err == nil, has)
	}
}
