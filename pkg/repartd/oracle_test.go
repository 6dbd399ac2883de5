package repartd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/hostfacts"
	"github.com/sprout-initrd/sprout/pkg/parttype"
	"github.com/sprout-initrd/sprout/pkg/sdvalue"
	"github.com/sprout-initrd/sprout/pkg/sdvalue/sdvaluetest"
	"github.com/sprout-initrd/sprout/tests/harness"
)

// The oracle tests run the installed systemd-repart 252 on the same
// definitions and compare. They skip when the binary is missing, unless
// SPROUT_REQUIRE_ORACLE=1 makes that a failure (harness.RequireHostOracle).

type oraclePart struct {
	Type    string `json:"type"`
	Label   string `json:"label"`
	UUID    string `json:"uuid"`
	File    string `json:"file"`
	RawSize uint64 `json:"raw_size"`
}

type oracleResult struct {
	parts  []oraclePart
	attrs  []uint64 // GPT attributes of the used entries, in entry order
	stderr string
	err    error // exit status: nil, or an *exec.ExitError with a non-zero code
}

// doesNotFit is 252's refusal of a disk too small for the definitions: the
// tests that make a 1M disk on purpose (so that repart parses and logs every
// definition, then gives up) require this refusal and no other.
const doesNotFit = "Can't fit requested partitions into available free space"

// requireRefusedForSize fails unless repart exited non-zero because the
// definitions do not fit, so that a repart refusing anything else (or
// failing early, before it parsed every file) never reads as "accepted".
func (r oracleResult) requireRefusedForSize(t *testing.T) {
	t.Helper()
	if r.err == nil || !strings.Contains(r.stderr, doesNotFit) {
		t.Fatalf("repart was expected to parse every definition and refuse only because the 1M disk is too small (%q); it exited with %v:\n%s", doesNotFit, r.err, r.stderr)
	}
}

// runOracle lets systemd-repart create a fresh image of the given size
// from the definitions in dirs (each passed as --definitions=) plus extra
// flags. With dryRun it writes nothing and attrs stays empty.
func runOracle(t *testing.T, size string, dryRun bool, dirs []string, extra ...string) oracleResult {
	t.Helper()
	img := filepath.Join(t.TempDir(), "img")
	args := []string{"--empty=create", "--size=" + size, "--json=short",
		"--seed=0123456789abcdef0123456789abcdef", "--dry-run=" + strconv.FormatBool(dryRun)}
	for _, d := range dirs {
		args = append(args, "--definitions="+d)
	}
	args = append(append(args, extra...), img)
	cmd := exec.Command(harness.HostRepart, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	r := oracleResult{err: cmd.Run(), stderr: stderr.String()}
	// Only an exit code is an answer: a repart that could not be started
	// or died from a signal is a broken oracle, never "refused".
	var exitErr *exec.ExitError
	if r.err != nil && (!errors.As(r.err, &exitErr) || exitErr.ExitCode() < 0) {
		t.Fatalf("oracle %s %q did not run to an exit code: %v\n%s", harness.HostRepart, args, r.err, r.stderr)
	}
	if r.err == nil {
		if err := json.Unmarshal(stdout.Bytes(), &r.parts); err != nil {
			t.Fatalf("decoding repart JSON: %v\n%s", err, stdout.String())
		}
		if !dryRun {
			r.attrs = readGPTAttrs(t, img)
		}
	}
	return r
}

// readGPTAttrs returns the attributes of the used entries of the primary
// GPT of a 512-byte-sector image.
func readGPTAttrs(t *testing.T, img string) []uint64 {
	t.Helper()
	c, err := harness.ReadGPTCopyFile(img, 512, 1)
	if err == nil && !c.Intact() {
		err = fmt.Errorf("%s: primary GPT: %s", img, c.Problem)
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, e := range c.UsedEntries() {
		out = append(out, e.Attrs)
	}
	return out
}

// messages maps "file:line" to what repart logged about it.
var messageLine = regexp.MustCompile(`(?m)^(/[^:\n]+):(\d+): (.*)$`)

func messages(stderr string) map[string][]string {
	out := map[string][]string{}
	for _, m := range messageLine.FindAllStringSubmatch(stderr, -1) {
		key := filepath.Base(m[1]) + ":" + m[2]
		out[key] = append(out[key], m[3])
	}
	return out
}

// complaints are the messages other than the rounding notices.
func complaints(msgs []string) []string {
	var out []string
	for _, m := range msgs {
		if !strings.HasPrefix(m, "Rounded ") {
			out = append(out, m)
		}
	}
	return out
}

// defsDir writes files into a fresh directory.
func defsDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		writeFile(t, dir, name, body)
	}
	return dir
}

// TestOracleSizes: for every valid size, repart's rounding notices report
// the value we parse and the value we round to; every invalid size makes
// repart refuse the file.
func TestOracleSizes(t *testing.T) {
	harness.RequireHostOracle(t)
	files := map[string]string{}
	var valid []string
	for i, c := range sdvaluetest.Sizes {
		if c.Err != nil {
			continue
		}
		name := fmt.Sprintf("%03d.conf", i)
		files[name] = "[Partition]\nType=home\nSizeMinBytes=" + c.In + "\nSizeMaxBytes=" + c.In + "\n"
		valid = append(valid, name)
	}
	dir := defsDir(t, files)
	defs, err := Load(Options{Compat: compat.Oldest, Dirs: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	// The disk is far too small on purpose: repart parses and logs every
	// definition before it gives up.
	r := runOracle(t, "1M", true, []string{dir})
	r.requireRefusedForSize(t)
	if strings.Contains(r.stderr, "Failed to parse") {
		t.Fatalf("repart refused a size we accept:\n%s", r.stderr)
	}
	msgs := messages(r.stderr)
	notice := regexp.MustCompile(`^Rounded (\w+)= size (\d+) → (\d+), a multiple of 4096\.$`)
	for i, d := range defs {
		in := sdvaluetest.Sizes[mustAtoi(t, strings.TrimSuffix(d.File, ".conf"))].In
		raw, _ := sdvalue.Size(in)
		for line, key := range map[int]string{3: "SizeMinBytes", 4: "SizeMaxBytes"} {
			ours := d.SizeMin
			if key == "SizeMaxBytes" {
				ours = d.SizeMax
			}
			var got []string
			for _, m := range msgs[fmt.Sprintf("%s:%d", valid[i], line)] {
				if sm := notice.FindStringSubmatch(m); sm != nil && sm[1] == key {
					got = sm
				}
			}
			if got == nil {
				if ours != raw {
					t.Errorf("%s=%s: we parse %d and round to %d, repart logged no rounding", key, in, raw, ours)
				}
				continue
			}
			if got[2] != strconv.FormatUint(raw, 10) || got[3] != strconv.FormatUint(ours, 10) {
				t.Errorf("%s=%s: repart parsed %s and rounded to %s; we parse %d and round to %d", key, in, got[2], got[3], raw, ours)
			}
		}
	}

	for _, c := range sdvaluetest.Sizes {
		if c.Err == nil {
			continue
		}
		dir := defsDir(t, map[string]string{"a.conf": "[Partition]\nType=home\nSizeMaxBytes=" + c.In + "\n"})
		r := runOracle(t, "1M", true, []string{dir})
		if r.err == nil || !strings.Contains(r.stderr, "a.conf:3: Failed to parse size value") {
			t.Errorf("SizeMaxBytes=%q: we refuse it (%v), repart did not:\n%s", c.In, c.Err, r.stderr)
		}
		if _, err := Load(Options{Compat: compat.Oldest, Dirs: []string{dir}}); err == nil {
			t.Errorf("SizeMaxBytes=%q: Load accepted it", c.In)
		}
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOracleIntegers: repart accepts exactly the Weight=/Priority= values
// we accept, and a Weight= written in another base allocates exactly like
// the decimal value we read from it.
func TestOracleIntegers(t *testing.T) {
	harness.RequireHostOracle(t)
	files := map[string]string{}
	for i, c := range sdvaluetest.Integers {
		files[fmt.Sprintf("w%03d.conf", i)] = "[Partition]\nType=home\nWeight=" + c.In + "\n"
		files[fmt.Sprintf("p%03d.conf", i)] = "[Partition]\nType=home\nPriority=" + c.In + "\n"
	}
	files["w999.conf"] = "[Partition]\nType=home\nWeight=1000000\n"
	files["w998.conf"] = "[Partition]\nType=home\nWeight=1000001\n"
	dir := defsDir(t, files)
	r := runOracle(t, "1M", true, []string{dir})
	r.requireRefusedForSize(t)
	msgs := messages(r.stderr)
	weights := map[string]uint32{}
	for name := range files {
		d, err := Parse(filepath.Join(dir, name), nil)
		repartOK := len(complaints(msgs[name+":3"])) == 0
		if (err == nil) != repartOK {
			t.Errorf("%s: repart accepts=%v, we: %v (repart: %v)", strings.TrimSpace(files[name][len("[Partition]\nType=home\n"):]), repartOK, err, msgs[name+":3"])
		}
		if err == nil && name[0] == 'w' {
			weights[name] = d.Weight
		}
	}

	// Values: Weight=X against Weight=<our decimal reading of X>, next to a
	// fixed competitor, must give the same sizes.
	alloc := func(weight string) []oraclePart {
		dir := defsDir(t, map[string]string{
			"a.conf": "[Partition]\nType=home\nWeight=" + weight + "\n",
			"b.conf": "[Partition]\nType=srv\nWeight=16\n",
		})
		r := runOracle(t, "100M", true, []string{dir})
		if r.err != nil {
			t.Fatalf("Weight=%s: %v\n%s", weight, r.err, r.stderr)
		}
		return r.parts
	}
	for i, c := range sdvaluetest.Integers {
		w, ok := weights[fmt.Sprintf("w%03d.conf", i)]
		dec := strconv.FormatUint(uint64(w), 10)
		if !ok || c.In == dec {
			continue
		}
		got, want := alloc(c.In), alloc(dec)
		if got[0].RawSize != want[0].RawSize || got[1].RawSize != want[1].RawSize {
			t.Errorf("Weight=%s allocates %d/%d in repart; Weight=%s (our reading) allocates %d/%d", c.In,
				got[0].RawSize, got[1].RawSize, dec, want[0].RawSize, want[1].RawSize)
		}
	}
}

// TestOracleFlagsAndBooleans: Flags= values in any base and every boolean
// spelling set the same GPT attributes in repart as in our Definition.
func TestOracleFlagsAndBooleans(t *testing.T) {
	harness.RequireHostOracle(t)
	type tc struct {
		setting string
		ok      bool
		bit63   bool
	}
	var cases []tc
	for _, b := range sdvaluetest.Booleans {
		if b.In == "" {
			continue // NoAuto= (empty) resets; covered below
		}
		cases = append(cases, tc{"NoAuto=" + b.In, b.OK, b.OK && b.Want})
	}
	cases = append(cases,
		tc{"NoAuto=", true, false},
		tc{"NoAuto=yes\nNoAuto=", true, false}, // empty resets
		tc{"Flags=0x8000000000000000", true, true},
		tc{"Flags=9223372036854775808", true, true},
		tc{"Flags=01000000000000000000000", true, true},
		tc{"Flags=0b1" + strings.Repeat("0", 63), true, true},
		tc{"Flags=0", true, false},
		tc{"Flags=", false, false},
		tc{"Flags=-1", false, false},
		tc{"Flags=18446744073709551616", false, false},
	)
	files := map[string]string{}
	for i, c := range cases {
		files[fmt.Sprintf("%03d.conf", i)] = "[Partition]\nType=home\nSizeMinBytes=4096\nSizeMaxBytes=4096\n" + c.setting + "\n"
	}
	dir := defsDir(t, files)
	r := runOracle(t, "8M", false, []string{dir})
	if r.err != nil {
		t.Fatalf("repart: %v\n%s", r.err, r.stderr)
	}
	msgs := messages(r.stderr)
	for i, c := range cases {
		name := fmt.Sprintf("%03d.conf", i)
		lastLine := 5 + strings.Count(c.setting, "\n")
		repartOK := len(complaints(msgs[fmt.Sprintf("%s:%d", name, lastLine)])) == 0
		_, err := Parse(filepath.Join(dir, name), nil)
		if ours := err == nil; ours != c.ok || repartOK != c.ok {
			t.Errorf("%q: we accept=%v (%v), repart accepts=%v, want %v", c.setting, ours, err, repartOK, c.ok)
		}
		if got := r.attrs[i]&(1<<63) != 0; got != c.bit63 {
			t.Errorf("%q: repart set bit 63=%v, want %v", c.setting, got, c.bit63)
		}
	}
}

// labelCases: file bodies after "[Partition]\nType=linux-generic\n" with a
// Label= that both repart and we read the same way. Each label starts with
// a unique tag so repart's de-duplication never applies.
var labelCases = []struct {
	body  string
	label string
}{
	{"Label=L00", "L00"},
	{"Label=  L01  spaced  ", "L01  spaced"},
	{`Label="L02"`, `"L02"`},
	{`Label='L03 x'`, `'L03 x'`},
	{"Label=L04\\\n  bar  ", "L04   bar"},
	{"Label=L05 \\\n b \\\n c", "L05   b   c"},
	{"Label=L06\\\n# comment\\\n   ; indented\nb", "L06 b"},
	{"Label=L07\\\n\nX-After=1", "L07"},
	{"Label=L08\\\\", `L08\\`},
	{"Label=L09\\\\\\\nz", `L09\\ z`},
	{"Label=L10\\ ", `L10\`},
	{"Label=L11%", "L11%"},
	{"Label=L12%%x", "L12%x"},
	{"Label=L13%%%", "L13%%"},
	{"Label=L14" + strings.Repeat("x", 33), "L14" + strings.Repeat("x", 33)},
	{"Label=L15" + strings.Repeat("x", 31) + "%%", "L15" + strings.Repeat("x", 31) + "%"},
	{"Label=L16" + strings.Repeat("é", 16) + "x", "L16" + strings.Repeat("é", 16) + "x"},
	{"Label=L17" + strings.Repeat("😀", 8) + "x", "L17" + strings.Repeat("😀", 8) + "x"},
	{"Label=L18\tx\x01", "L18\tx\x01"},
	{"Label=nope\rLabel=L19", "L19"},
	{"Label=nope\r\nLabel=L20", "L20"},
	{"Label=nope\x00Label=L21", "L21"},
	{"Label=nope\nLabel=L22", "L22"},
	{"[X-Ignored]\nLabel=nope\nAnything=1\n[Partition]\nLabel=L23", "L23"},
	{"X-Whatever=1\nLabel=L24", "L24"},
	{"La\\\nbel=nope\nLabel=L25", ""}, // "La bel" is an unknown key: both complain
}

// TestOracleLabels: repart shows (and writes) the label we parse.
func TestOracleLabels(t *testing.T) {
	harness.RequireHostOracle(t)
	files := map[string]string{}
	for i, c := range labelCases {
		files[fmt.Sprintf("%03d.conf", i)] = "[Partition]\nType=linux-generic\nSizeMinBytes=4096\nSizeMaxBytes=4096\n" + c.body + "\n"
	}
	files["999.conf"] = "\xef\xbb\xbf[Partition]\nType=linux-generic\nSizeMinBytes=4096\nSizeMaxBytes=4096\nLabel=BOM\n"
	dir := defsDir(t, files)
	r := runOracle(t, "8M", true, []string{dir})
	if r.err != nil {
		t.Fatalf("repart: %v\n%s", r.err, r.stderr)
	}
	shown := map[string]string{}
	for _, p := range r.parts {
		shown[p.File] = p.Label
	}
	for i, c := range labelCases {
		name := fmt.Sprintf("%03d.conf", i)
		d, err := Parse(filepath.Join(dir, name), nil)
		if c.label == "" {
			if err == nil {
				t.Errorf("%q: we accepted it", c.body)
			}
			if !strings.Contains(r.stderr, name+":6: Unknown key") {
				t.Errorf("%q: repart did not complain", c.body)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.body, err)
			continue
		}
		if *d.Label != c.label || shown[name] != c.label {
			t.Errorf("%q: we read %q, repart shows %q, want %q", c.body, *d.Label, shown[name], c.label)
		}
	}
	if shown["999.conf"] != "BOM" {
		t.Errorf("BOM file: repart shows %q", shown["999.conf"])
	}

	// Empty Label= is an empty label: repart shows "-" and writes no name.
	dir = defsDir(t, map[string]string{"a.conf": "[Partition]\nType=home\nLabel=\n"})
	r = runOracle(t, "100M", true, []string{dir})
	if r.err != nil {
		t.Fatalf("empty label: repart %v\n%s", r.err, r.stderr)
	}
	if d, err := Parse(filepath.Join(dir, "a.conf"), nil); err != nil || *d.Label != "" || r.parts[0].Label != "-" {
		t.Errorf("empty label: we %v %v, repart shows %q", d.Label, err, r.parts[0].Label)
	}
}

// TestOracleRejectedLabels: labels we refuse are ones repart ignores (it
// warns and falls back to the default label); specifiers expand to what
// repart expands them to on this machine.
func TestOracleRejectedLabels(t *testing.T) {
	harness.RequireHostOracle(t)
	cases := []struct {
		label    string
		expanded bool // repart expands it, and so do we
	}{
		{strings.Repeat("x", 37), false},
		{strings.Repeat("é", 18) + "x", false}, // 37 bytes, 19 UTF-16 units
		{strings.Repeat("😀", 9) + "x", false},  // 37 bytes
		{strings.Repeat("x", 36) + "%%", false},
		{"a%z", false},
		{"%a", true},
		{"x-%w", true},
		{"%o-%v", true},
		{"%m", true},
		{"%b%%%l", true},
		{"%b-%b", false}, // too long once expanded
	}
	files := map[string]string{}
	for i, c := range cases {
		files[fmt.Sprintf("%03d.conf", i)] = "[Partition]\nType=linux-generic\nSizeMinBytes=4096\nSizeMaxBytes=4096\nLabel=" + c.label + "\n"
	}
	dir := defsDir(t, files)
	r := runOracle(t, "8M", true, []string{dir})
	if r.err != nil {
		t.Fatalf("repart: %v\n%s", r.err, r.stderr)
	}
	msgs := messages(r.stderr)
	host := hostfacts.Read("", os.Getenv).Specifiers()
	for i, c := range cases {
		name := fmt.Sprintf("%03d.conf", i)
		d, err := parseFor(filepath.Join(dir, name), nil, host, compat.Oldest)
		warned := len(complaints(msgs[name+":5"])) > 0
		label := r.parts[i].Label
		if c.expanded {
			if err != nil || warned || d.Label == nil || *d.Label != label {
				t.Errorf("Label=%s: repart wrote %q (warned %v), we %v %v", c.label, label, warned, d.Label, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("Label=%s: we accepted it", c.label)
		}
		if !warned || !strings.HasPrefix(label, "linux-generic") {
			t.Errorf("Label=%s: expected repart to ignore it, got %q (warned %v)", c.label, label, warned)
		}
	}

	// Invalid UTF-8 makes repart refuse the whole file.
	dir = defsDir(t, map[string]string{"a.conf": "[Partition]\nType=home\nLabel=a\xffb\n"})
	r = runOracle(t, "100M", true, []string{dir})
	if r.err == nil || !strings.Contains(r.stderr, "a.conf:3: String is not UTF-8 clean") {
		t.Errorf("invalid UTF-8: repart %v\n%s", r.err, r.stderr)
	}
}

// TestOracleUUIDs: the UUID= forms repart takes are the ones we take.
func TestOracleUUIDs(t *testing.T) {
	harness.RequireHostOracle(t)
	cases := []struct {
		value string
		want  string // "" = refused
	}{
		{"01234567-89ab-cdef-0123-456789abcd00", "01234567-89ab-cdef-0123-456789abcd00"},
		{"0123456789ABCDEF0123456789ABCD01", "01234567-89ab-cdef-0123-456789abcd01"},
		{"01234567-89AB-cdef-0123-456789abcd02", "01234567-89ab-cdef-0123-456789abcd02"},
		{"null", "00000000-0000-0000-0000-000000000000"},
		{"NULL", ""},
		{"{01234567-89ab-cdef-0123-456789abcd03}", ""},
		{"01234567-89abcdef-0123-456789abcd04", ""},
		{"0123456789ab-cdef-0123-456789abcd05", ""},
		{"01234567-89ab-cdef-0123-456789abcd0", ""},
		{"xyz", ""},
	}
	files := map[string]string{}
	for i, c := range cases {
		files[fmt.Sprintf("%03d.conf", i)] = "[Partition]\nType=home\nSizeMinBytes=4096\nSizeMaxBytes=4096\nUUID=" + c.value + "\n"
	}
	// An empty UUID= resets to the derived UUID.
	files["100.conf"] = "[Partition]\nType=home\nSizeMinBytes=4096\nSizeMaxBytes=4096\nUUID=01234567-89ab-cdef-0123-456789abcd99\nUUID=\n"
	dir := defsDir(t, files)
	r := runOracle(t, "8M", true, []string{dir})
	if r.err != nil {
		t.Fatalf("repart: %v\n%s", r.err, r.stderr)
	}
	msgs := messages(r.stderr)
	for i, c := range cases {
		name := fmt.Sprintf("%03d.conf", i)
		d, err := Parse(filepath.Join(dir, name), nil)
		warned := len(complaints(msgs[name+":5"])) > 0
		if c.want == "" {
			if err == nil || !warned {
				t.Errorf("UUID=%s: we accept=%v, repart warned=%v; want both to refuse", c.value, err == nil, warned)
			}
			continue
		}
		if err != nil || warned || d.UUID.String() != c.want || r.parts[i].UUID != c.want {
			t.Errorf("UUID=%s: we %v %v, repart %q (warned %v), want %s", c.value, deref(d.UUID), err, r.parts[i].UUID, warned, c.want)
		}
	}
	if d, err := Parse(filepath.Join(dir, "100.conf"), nil); err != nil || d.UUID != nil ||
		r.parts[len(cases)].UUID == "01234567-89ab-cdef-0123-456789abcd99" {
		t.Errorf("UUID= reset: we %v %v, repart %s", deref(d.UUID), err, r.parts[len(cases)].UUID)
	}
}

// TestOracleErrorLines: for files we refuse because of one line, repart
// complains about the same line (it warns, ignores the line or refuses
// the file).
func TestOracleErrorLines(t *testing.T) {
	harness.RequireHostOracle(t)
	cases := []string{
		"[Partition]\nType=home\nFoo=bar\n",
		"[Partition]\nType=home\nMinimize=best\n",
		"[Partition]\nType=home\n\n\ntype=esp\n",
		"[Partition]\nType=home\n[Foo]\nLabel=x\n",
		"[Partition]\nType=home\n[ Partition ]\n",
		"Label=x\n[Partition]\nType=home\n",
		"[Partition]\nType=home\nLabel\n",
		"[Partition]\nType=home\n=x\n",
		"[Partition\nType=home\n",
		"[Partition]#\nType=home\n",
		"[Partition]\nType=home\nWeight=heavy\n",
		"[Partition]\nType=home\nWeight=1000001\n",
		"[Partition]\nType=home\nPriority=\n",
		"[Partition]\nType=home\nFactoryReset=\n",
		"[Partition]\nType=home\nFormat=\n",
		"[Partition]\nType=home\nNoAuto=2\n",
		"[Partition]\nType=home\nUUID=NULL\n",
		"[Partition]\nType=home\nType=\n",
		"[Partition]\nType=ESP\n",
		"[Partition]\nType=home\nSizeMinBytes=\n",
		"[Partition]\nType=home\nLabel=%z\n",
		"[Partition]\r\nType=home\r\nFoo=1\r\n",
		"[Partition]\rType=home\r\rFoo=1\n",
		"[Partition]\nType=home\n\x00Foo=1\n",
		"[Partition]\nType=home\n\n\n\r\r\nFoo=1\n",
		"[Partition]\nType=home\nLabel=a\\\nb\nFoo=1\n",
	}
	for _, body := range cases {
		dir := defsDir(t, map[string]string{"a.conf": body})
		_, err := Parse(filepath.Join(dir, "a.conf"), nil)
		se, ok := err.(*Error)
		if !ok {
			t.Errorf("%q: we accepted it (%v)", body, err)
			continue
		}
		r := runOracle(t, "100M", true, []string{dir})
		if got := complaints(messages(r.stderr)[fmt.Sprintf("a.conf:%d", se.Line)]); len(got) == 0 {
			t.Errorf("%q: we refuse line %d (%s); repart said nothing about it:\n%s", body, se.Line, se.Msg, r.stderr)
		}
	}
}

// TestOracleSemanticChecks: Type= missing and min > max are refused by
// both; min and max are compared after rounding; SizeMinBytes=
// SizeMaxBytes=15000000 gives a 15003648-byte partition, our SizeMax.
func TestOracleSemanticChecks(t *testing.T) {
	harness.RequireHostOracle(t)
	for _, c := range []struct {
		body    string
		refused string // repart's words; "" = accepted
	}{
		{"[Partition]\nLabel=x\n", "Type= not defined"},
		{"[Partition]\nType=00000000-0000-0000-0000-000000000000\n", "Type= not defined"},
		{"[Partition]\nType=home\nSizeMinBytes=20M\nSizeMaxBytes=10M\n", "SizeMinBytes= larger than SizeMaxBytes="},
		{"[Partition]\nType=home\nPaddingMinBytes=20M\nPaddingMaxBytes=10M\n", "PaddingMinBytes= larger than PaddingMaxBytes="},
		{"[Partition]\nType=home\nSizeMinBytes=5000\nSizeMaxBytes=4097\n", ""},
		{"[Partition]\nType=home\nPaddingMinBytes=9000\nPaddingMaxBytes=4097\n", ""},
		{"[Partition]\nType=home\nSizeMinBytes=1E\nSizeMaxBytes=18446744073709551615\n", ""},
	} {
		dir := defsDir(t, map[string]string{"a.conf": c.body})
		_, err := Load(Options{Compat: compat.Oldest, Dirs: []string{dir}})
		r := runOracle(t, "100M", true, []string{dir})
		repartRefused := r.err != nil && strings.Contains(r.stderr, c.refused)
		if c.refused == "" {
			// Accepted: it planned the partition, or refused only
			// because the disk is too small for it (1E).
			repartRefused = r.err != nil && !strings.Contains(r.stderr, doesNotFit)
		}
		if (err != nil) != (c.refused != "") || repartRefused != (c.refused != "") {
			t.Errorf("%q: we %v; repart refused=%v\n%s", c.body, err, repartRefused, r.stderr)
		}
	}

	dir := defsDir(t, map[string]string{"a.conf": "[Partition]\nType=home\nSizeMinBytes=15000000\nSizeMaxBytes=15000000\n"})
	defs, err := Load(Options{Compat: compat.Oldest, Dirs: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	r := runOracle(t, "100M", true, []string{dir})
	if r.err != nil || r.parts[0].RawSize != 15003648 || defs[0].SizeMax != 15003648 || defs[0].SizeMin != 14999552 {
		t.Errorf("15000000: repart %v size %v; we min %d max %d", r.err, r.parts, defs[0].SizeMin, defs[0].SizeMax)
	}
}

// TestOracleSearch builds two --definitions directories with shadowed,
// masked, hidden, dangling and non-regular entries and drop-ins, and
// compares the definitions (file name, type, label) repart uses with ours.
func TestOracleSearch(t *testing.T) {
	harness.RequireHostOracle(t)
	d1, d2 := t.TempDir(), t.TempDir()
	body := func(typ, label string) string {
		return "[Partition]\nType=" + typ + "\nSizeMinBytes=4096\nSizeMaxBytes=4096\nLabel=" + label + "\n"
	}
	writeFile(t, d1, "10-a.conf", body("home", "a-d1"))
	writeFile(t, d2, "10-a.conf", body("srv", "a-d2"))
	writeFile(t, d2, "20-b.conf", body("var", "b-d2"))
	symlink(t, "/dev/null", filepath.Join(d1, "30-null.conf"))
	writeFile(t, d2, "30-null.conf", body("tmp", "masked"))
	writeFile(t, d1, "40-empty.conf", "")
	writeFile(t, d2, "40-empty.conf", body("tmp", "masked"))
	if err := os.Mkdir(filepath.Join(d1, "50-dir.conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, d2, "50-dir.conf", body("tmp", "dir-d2"))
	symlink(t, filepath.Join(d1, "missing"), filepath.Join(d1, "60-dangling.conf"))
	writeFile(t, d2, "60-dangling.conf", body("tmp", "dangling-d2"))
	symlink(t, writeFile(t, t.TempDir(), "target", body("swap", "linked")), filepath.Join(d1, "70-link.conf"))
	writeFile(t, d1, ".80-hidden.conf", body("tmp", "hidden"))
	writeFile(t, d1, "80-notes.txt", body("tmp", "txt"))
	writeFile(t, d2, "A.conf", body("esp", "upper"))
	// Drop-ins for 20-b.conf from both directories.
	writeFile(t, d2, "20-b.conf.d/10-x.conf", "[Partition]\nLabel=x-d2\n")
	writeFile(t, d1, "20-b.conf.d/10-x.conf", "[Partition]\nLabel=x-d1\n")
	writeFile(t, d2, "20-b.conf.d/05-y.conf", "[Partition]\nLabel=y\nType=srv\n")
	symlink(t, "/dev/null", filepath.Join(d1, "20-b.conf.d/30-null.conf"))
	writeFile(t, d2, "20-b.conf.d/30-null.conf", "[Partition]\nType=tmp\n")
	symlink(t, filepath.Join(d1, "missing"), filepath.Join(d1, "20-b.conf.d/40-dangling.conf"))
	writeFile(t, d2, "20-b.conf.d/40-dangling.conf", "[Partition]\nType=swap\n")
	writeFile(t, d1, "20-b.conf.d/.50-hidden.conf", "[Partition]\nType=esp\n")
	writeFile(t, d1, "20-b.conf.d/Z.conf", "[Partition]\nLabel=Z\n") // sorts before "a" but after digits
	writeFile(t, d1, "20-b.conf.d/a.conf", "[Partition]\nLabel=a\n")

	dirs := []string{d1, d2, d1}
	r := runOracle(t, "8M", true, dirs)
	if r.err != nil {
		t.Fatalf("repart: %v\n%s", r.err, r.stderr)
	}
	defs, err := Load(Options{Compat: compat.Oldest, Dirs: dirs})
	if err != nil {
		t.Fatal(err)
	}
	var theirs, ours []string
	for _, p := range r.parts {
		theirs = append(theirs, p.File+" "+p.Type+" "+p.Label)
	}
	for _, d := range defs {
		ours = append(ours, d.File+" "+parttype.DisplayName(d.Type)+" "+*d.Label)
	}
	if strings.Join(theirs, "\n") != strings.Join(ours, "\n") {
		t.Errorf("repart uses:\n%s\nwe load:\n%s", strings.Join(theirs, "\n"), strings.Join(ours, "\n"))
	}
}

// TestOracleRootSearchPath: without --definitions, repart reads the four
// directories under --root in priority order.
func TestOracleRootSearchPath(t *testing.T) {
	harness.RequireHostOracle(t)
	root := t.TempDir()
	body := func(typ string) string {
		return "[Partition]\nType=" + typ + "\nSizeMinBytes=4096\nSizeMaxBytes=4096\n"
	}
	writeFile(t, root, "usr/lib/repart.d/a.conf", body("home"))
	writeFile(t, root, "usr/local/lib/repart.d/b.conf", body("srv"))
	writeFile(t, root, "usr/lib/repart.d/b.conf", body("var"))
	writeFile(t, root, "run/repart.d/c.conf", body("tmp"))
	writeFile(t, root, "usr/local/lib/repart.d/c.conf", body("swap"))
	writeFile(t, root, "etc/repart.d/d.conf", body("esp"))
	writeFile(t, root, "run/repart.d/d.conf", body("swap"))
	symlink(t, "/dev/null", filepath.Join(root, "etc/repart.d/e.conf"))
	writeFile(t, root, "usr/lib/repart.d/e.conf", body("swap"))

	r := runOracle(t, "8M", true, nil, "--root="+root)
	if r.err != nil {
		t.Fatalf("repart: %v\n%s", r.err, r.stderr)
	}
	defs, err := Load(Options{Compat: compat.Oldest, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	var theirs, ours []string
	for _, p := range r.parts {
		theirs = append(theirs, p.File+" "+p.Type)
	}
	for _, d := range defs {
		ours = append(ours, d.File+" "+parttype.DisplayName(d.Type))
	}
	if strings.Join(theirs, ",") != strings.Join(ours, ",") {
		t.Errorf("repart uses %v, we load %v", theirs, ours)
	}
}

// TestOracleDeliberateDifferences pins the places where we refuse or read
// differently on purpose, so a change in the oracle shows up here.
func TestOracleDeliberateDifferences(t *testing.T) {
	harness.RequireHostOracle(t)
	// 1. repart 252 ignores drop-ins under --root (it reads the host's).
	root := t.TempDir()
	writeFile(t, root, "usr/lib/repart.d/a.conf", "[Partition]\nType=home\n")
	writeFile(t, root, "usr/lib/repart.d/a.conf.d/x.conf", "[Partition]\nLabel=dropin\n")
	r := runOracle(t, "100M", true, nil, "--root="+root)
	if r.err != nil || r.parts[0].Label != "home" {
		t.Errorf("root drop-in: repart %v shows %v; expected it to ignore the drop-in", r.err, r.parts)
	}
	if defs, err := Load(Options{Compat: compat.Oldest, Root: root}); err != nil || *defs[0].Label != "dropin" {
		t.Errorf("root drop-in: we %v", err)
	}

	// 2. repart 252 writes duplicate explicit UUIDs; we refuse them.
	dir := defsDir(t, map[string]string{
		"a.conf": "[Partition]\nType=home\nUUID=01234567-89ab-cdef-0123-456789abcdef\n",
		"b.conf": "[Partition]\nType=srv\nUUID=01234567-89ab-cdef-0123-456789abcdef\n",
	})
	r = runOracle(t, "100M", true, []string{dir})
	if r.err != nil || len(r.parts) != 2 || r.parts[0].UUID != r.parts[1].UUID {
		t.Errorf("duplicate UUIDs: repart %v %v", r.err, r.parts)
	}
	if _, err := Load(Options{Compat: compat.Oldest, Dirs: []string{dir}}); err == nil {
		t.Error("duplicate UUIDs: we accepted them")
	}

	// 3. Unknown keys are warnings in repart 252 (it ignores the line) and
	// errors for us.
	dir = defsDir(t, map[string]string{"a.conf": "[Partition]\nType=home\nFoo=1\n"})
	r = runOracle(t, "100M", true, []string{dir})
	if r.err != nil || !strings.Contains(r.stderr, "a.conf:3: Unknown key 'Foo'") {
		t.Errorf("unknown key: repart %v\n%s", r.err, r.stderr)
	}
	if _, err := Load(Options{Compat: compat.Oldest, Dirs: []string{dir}}); err == nil {
		t.Error("unknown key: we accepted it")
	}

	// 4. Image-building settings are real settings for repart: it acts on
	// them (here CopyBlocks=auto makes it fail without a source device).
	// We read them, and the planner refuses them on a partition it would
	// create (they have no effect on one that exists).
	dir = defsDir(t, map[string]string{"a.conf": "[Partition]\nType=home\nCopyBlocks=auto\n"})
	r = runOracle(t, "100M", true, []string{dir})
	if strings.Contains(r.stderr, "Unknown key") || r.err == nil || !strings.Contains(r.stderr, "automatic source block device discovery") {
		t.Errorf("CopyBlocks=auto: repart was expected to act on it and refuse for want of a source device (%v):\n%s", r.err, r.stderr)
	}
	if defs, err := Load(Options{Compat: compat.Oldest, Dirs: []string{dir}}); err != nil {
		t.Errorf("CopyBlocks: %v", err)
	} else if k, fills := defs[0].Fills(); !fills || k.Key != "CopyBlocks" {
		t.Errorf("CopyBlocks: not recorded as filling the partition: %+v", defs[0].ImageKeys)
	}
}
