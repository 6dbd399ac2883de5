package parttype

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/tests/harness"
)

// The oracle tests run the installed systemd-repart 252 and compare what it
// does with what this package claims. They skip when the binary is missing,
// unless SPROUT_REQUIRE_ORACLE=1 makes that a failure
// (harness.RequireHostOracle).

type oraclePartition struct {
	Type  string `json:"type"`
	Label string `json:"label"`
	File  string `json:"file"`
}

type gptEntry struct {
	Type  uuid.UUID
	Attrs uint64
}

// runOracle writes defs (file name → contents) into a fresh definitions
// directory, lets systemd-repart create a new image from them, and returns
// its JSON output and the GPT entries it wrote, indexed by definition file.
func runOracle(t *testing.T, defs map[string]string) (map[string]oraclePartition, map[string]gptEntry) {
	t.Helper()
	dir := t.TempDir()
	defDir := filepath.Join(dir, "defs")
	if err := os.Mkdir(defDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range defs {
		if err := os.WriteFile(filepath.Join(defDir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "img")
	cmd := exec.Command(harness.HostRepart, "--empty=create", "--size=8M", "--dry-run=no",
		"--definitions="+defDir, "--json=short",
		"--seed=0123456789abcdef0123456789abcdef", img)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("systemd-repart: %v\n%s", err, stderr.String())
	}
	var parts []oraclePartition
	if err := json.Unmarshal(stdout.Bytes(), &parts); err != nil {
		t.Fatalf("decoding repart JSON: %v\n%s", err, stdout.String())
	}
	entries := readGPT(t, img)
	if len(entries) != len(parts) {
		t.Fatalf("repart listed %d partitions, GPT has %d", len(parts), len(entries))
	}
	byFile := map[string]oraclePartition{}
	gptByFile := map[string]gptEntry{}
	// New partitions on an empty disk are numbered in definition order,
	// which is the order of the JSON list.
	for i, p := range parts {
		byFile[p.File] = p
		gptByFile[p.File] = entries[i]
	}
	return byFile, gptByFile
}

// readGPT returns the used entries of the primary GPT of a 512-byte-sector
// image, in entry order.
func readGPT(t *testing.T, img string) []gptEntry {
	t.Helper()
	c, err := harness.ReadGPTCopyFile(img, 512, 1)
	if err == nil && !c.Intact() {
		err = fmt.Errorf("%s: primary GPT: %s", img, c.Problem)
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []gptEntry
	for _, e := range c.UsedEntries() {
		out = append(out, gptEntry{Type: e.Type, Attrs: e.Attrs})
	}
	return out
}

const (
	bitGrowFS   = uint64(1) << 59
	bitReadOnly = uint64(1) << 60
	bitNoAuto   = uint64(1) << 63
)

// TestOracleTypes checks every table name and every alias: the GUID repart
// writes, the name it shows, the default label, and which GPT attribute bits
// it sets for three flag settings (which pins the capability functions).
func TestOracleTypes(t *testing.T) {
	harness.RequireHostOracle(t)
	native := NativeArch()
	var names []string
	for _, ty := range All() {
		names = append(names, ty.Name)
	}
	for _, base := range []string{"root", "usr"} {
		for _, suffix := range []string{"", "-verity", "-verity-sig"} {
			if native.Native != "" {
				names = append(names, base+suffix)
			}
			if native.Secondary != "" {
				names = append(names, base+"-secondary"+suffix)
			}
		}
	}
	configs := []struct {
		name     string
		settings string
		want     func(g uuid.UUID) uint64
	}{
		{"defaults", "", func(g uuid.UUID) uint64 {
			var a uint64
			if SupportsGrowFS(g) {
				a |= bitGrowFS
			}
			if IsVerity(g) {
				a |= bitReadOnly
			}
			return a
		}},
		{"NoAuto+ReadOnly", "NoAuto=yes\nReadOnly=yes\n", func(g uuid.UUID) uint64 {
			var a uint64
			if SupportsNoAuto(g) {
				a |= bitNoAuto
			}
			if SupportsReadOnly(g) {
				a |= bitReadOnly
			}
			return a
		}},
		{"GrowFileSystem", "ReadOnly=no\nGrowFileSystem=yes\n", func(g uuid.UUID) uint64 {
			if SupportsGrowFS(g) {
				return bitGrowFS
			}
			return 0
		}},
	}
	// One image per batch: a GPT has 128 entries and the aliases repeat
	// GUIDs of table rows (the labels would then get "-2" suffixes).
	var batches [][]string
	canonical := len(All())
	batches = append(batches, names[:canonical/2], names[canonical/2:canonical], names[canonical:])
	for _, cfg := range configs {
		for bi, batch := range batches {
			t.Run(fmt.Sprintf("%s/batch%d", cfg.name, bi), func(t *testing.T) {
				defs := map[string]string{}
				for i, n := range batch {
					defs[fmt.Sprintf("%03d.conf", i)] = "[Partition]\nType=" + n +
						"\nSizeMinBytes=4096\nSizeMaxBytes=4096\n" + cfg.settings
				}
				parts, gpt := runOracle(t, defs)
				for i, n := range batch {
					file := fmt.Sprintf("%03d.conf", i)
					g, ok := Lookup(n)
					if !ok {
						t.Errorf("Lookup(%q) failed but repart accepted it", n)
						continue
					}
					if gpt[file].Type != g {
						t.Errorf("%s: repart wrote type %v, Lookup gives %v", n, gpt[file].Type, g)
					}
					if got := parts[file].Type; got != DisplayName(g) {
						t.Errorf("%s: repart shows type %q, DisplayName gives %q", n, got, DisplayName(g))
					}
					if got := parts[file].Label; bi < 2 && got != DefaultLabel(g) {
						t.Errorf("%s: repart label %q, DefaultLabel gives %q", n, got, DefaultLabel(g))
					}
					if got, want := gpt[file].Attrs, cfg.want(g); got != want {
						t.Errorf("%s: repart set attributes %#x, capabilities predict %#x", n, got, want)
					}
				}
			})
		}
	}
}

// TestOracleUnknownType: an unknown GUID is shown as its lower-case string
// and labelled "linux"; literal UUIDs are accepted without dashes and in
// upper case.
func TestOracleUnknownType(t *testing.T) {
	harness.RequireHostOracle(t)
	const lit = "12345678123412341234123456789ABC"
	g, ok := Lookup(lit)
	if !ok {
		t.Fatalf("Lookup(%q) failed", lit)
	}
	parts, gpt := runOracle(t, map[string]string{"a.conf": "[Partition]\nType=" + lit + "\nSizeMinBytes=4096\n"})
	if gpt["a.conf"].Type != g {
		t.Errorf("repart wrote %v, Lookup gives %v", gpt["a.conf"].Type, g)
	}
	if parts["a.conf"].Type != DisplayName(g) || parts["a.conf"].Label != DefaultLabel(g) {
		t.Errorf("repart shows type %q label %q; we give %q %q",
			parts["a.conf"].Type, parts["a.conf"].Label, DisplayName(g), DefaultLabel(g))
	}
}

// TestOracleRejectedNames: values Lookup refuses make repart 252 fail with
// "Failed to parse partition type".
func TestOracleRejectedNames(t *testing.T) {
	harness.RequireHostOracle(t)
	for _, v := range []string{"ESP", "Root", "root-amd64", "root-x86_64", "{4f68bce3-e8cd-4db1-96e7-fbcaf984b709}",
		"4f68bce3e8cd-4db1-96e7-fbcaf984b709", "4f68bce3-e8cd-4db1-96e7-fbcaf984b70g"} {
		if _, ok := Lookup(v); ok {
			t.Errorf("Lookup(%q) succeeded", v)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "a.conf"), []byte("[Partition]\nType="+v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(harness.HostRepart, "--empty=create", "--size=8M", "--dry-run=yes",
			"--definitions="+dir, filepath.Join(dir, "img")).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "Failed to parse partition type") {
			t.Errorf("Type=%s: repart did not refuse it: %v\n%s", v, err, out)
		}
	}
}
