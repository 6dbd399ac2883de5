package repartd

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/sdvalue"
)

// fakeFacts are specifier inputs with a distinct value per letter.
func fakeFacts() sdvalue.SystemFacts {
	return sdvalue.SystemFacts{
		OSRelease: map[string]string{"ID": "acme", "VERSION_ID": "2.1", "VARIANT_ID": "edge",
			"BUILD_ID": "b42", "IMAGE_ID": "appliance", "IMAGE_VERSION": "7.3"},
		MachineID:     "0123456789abcdef0123456789abcdef",
		BootID:        "fedcba9876543210fedcba9876543210",
		Hostname:      "box.example.org",
		KernelRelease: "6.1.0-9-amd64",
		Arch:          "x86-64",
		TmpDir:        "/tmp",
		VarTmpDir:     "/var/tmp",
	}
}

func parseLabel(t *testing.T, sp sdvalue.Specifiers, body string) (Definition, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "10-x.conf")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return parseFor(path, nil, sp, compat.Oldest)
}

func TestLabelSpecifiers(t *testing.T) {
	sp := fakeFacts().Specifiers()
	for _, c := range []struct{ label, want string }{
		{"%a", "x86-64"},
		{"%A", "7.3"},
		{"%b", "fedcba9876543210fedcba9876543210"},
		{"%B", "b42"},
		{"%H", "box.example.org"},
		{"%l", "box"},
		{"%m", "0123456789abcdef0123456789abcdef"},
		{"%M", "appliance"},
		{"%o", "acme"},
		{"%v", "6.1.0-9-amd64"},
		{"%w", "2.1"},
		{"%W", "edge"},
		{"%T", "/tmp"},
		{"%V", "/var/tmp"},
		{"%%", "%"},
		{"%o-%w_%W", "acme-2.1_edge"},
		{"100%", "100%"},    // a trailing % stays
		{"%%%a", "%x86-64"}, // %% then a specifier
		{"%%a", "%a"},       // %% then a literal a
		{"x%", "x%"},        // trailing
		{"%ab", "x86-64b"},  // one letter only
		{"", ""},            // empty label
		{"é%o", "éacme"},    // UTF-8 around a specifier
		{"%m%%%%", "0123456789abcdef0123456789abcdef%%"},
	} {
		d, err := parseLabel(t, sp, "[Partition]\nType=home\nLabel="+c.label+"\n")
		if err != nil {
			t.Errorf("Label=%s: %v", c.label, err)
			continue
		}
		if d.Label == nil || *d.Label != c.want {
			t.Errorf("Label=%s: got %v, want %q", c.label, d.Label, c.want)
		}
		if len(d.Warnings) != 0 {
			t.Errorf("Label=%s: unexpected warnings %v", c.label, d.Warnings)
		}
	}
}

// A field missing from os-release expands to "", as in 252.
func TestLabelSpecifierEmptyField(t *testing.T) {
	f := fakeFacts()
	f.OSRelease = map[string]string{"ID": "acme"}
	for _, l := range []string{"%A", "%B", "%M", "%w", "%W"} {
		d, err := parseLabel(t, f.Specifiers(), "[Partition]\nType=home\nLabel=x"+l+"y\n")
		if err != nil || d.Label == nil || *d.Label != "xy" {
			t.Errorf("Label=x%sy: got %v %v, want \"xy\"", l, d.Label, err)
		}
	}
}

// A specifier whose source is missing makes 252 ignore the line with a
// warning; an earlier Label= (or none) stays.
func TestLabelSpecifierMissingSource(t *testing.T) {
	f := fakeFacts()
	f.OSRelease, f.OSReleaseErr = nil, errors.New("no os-release")
	f.MachineID, f.MachineIDErr = "", errors.New("no machine ID")
	sp := f.Specifiers()
	for _, l := range []string{"%o", "%w", "%W", "%B", "%M", "%A", "%m"} {
		d, err := parseLabel(t, sp, "[Partition]\nType=home\nLabel=x"+l+"\n")
		if err != nil {
			t.Errorf("Label=x%s: %v", l, err)
			continue
		}
		if d.Label != nil {
			t.Errorf("Label=x%s: label %q set, want it ignored", l, *d.Label)
		}
		if len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], "10-x.conf:3: ignoring Label=x"+l) {
			t.Errorf("Label=x%s: warnings %q", l, d.Warnings)
		}
		if _, ok := d.Lines["Label"]; ok {
			t.Errorf("Label=x%s: an ignored line is recorded as set", l)
		}
	}
	d, err := parseLabel(t, sp, "[Partition]\nType=home\nLabel=first\nLabel=%o\n")
	if err != nil || d.Label == nil || *d.Label != "first" || len(d.Warnings) != 1 {
		t.Errorf("earlier label: got %v %v %q, want \"first\" and one warning", d.Label, err, d.Warnings)
	}
	// Without values at all (Parse), a known specifier is ignored too.
	dir := t.TempDir()
	path := filepath.Join(dir, "a.conf")
	os.WriteFile(path, []byte("[Partition]\nType=home\nLabel=%a\n"), 0o644)
	if d, err := Parse(path, nil); err != nil || d.Label != nil || len(d.Warnings) != 1 {
		t.Errorf("Parse without values: %v %v %q", d.Label, err, d.Warnings)
	}
}

func TestLabelSpecifierErrors(t *testing.T) {
	sp := fakeFacts().Specifiers()
	missing := fakeFacts()
	missing.OSReleaseErr = errors.New("gone")
	for _, c := range []struct {
		name, label string
		sp          sdvalue.Specifiers
		msg         string
	}{
		{"unknown", "%z", sp, "unknown specifier %z"},
		{"unknown t (SplitName only)", "%t", sp, "unknown specifier %t"},
		{"unknown U", "%U", sp, "unknown specifier %U"},
		{"unknown after known", "%a%Z", sp, "unknown specifier %Z"},
		{"unknown after missing", "%o%Z", missing.Specifiers(), "unknown specifier %Z"},
		{"unknown multibyte", "%ü", sp, "unknown specifier %ü"},
		{"too long once expanded", "%m-%o", sp, `expands to "0123456789abcdef0123456789abcdef-acme", 37 bytes long`},
		{"too long host name", "%b%H", sp, "47 bytes long"},
	} {
		_, err := parseLabel(t, c.sp, "[Partition]\nType=home\n\nLabel="+c.label+"\n")
		var se *Error
		if !errors.As(err, &se) || se.Line != 4 || se.Key != "Label" || !strings.Contains(err.Error(), c.msg) ||
			!strings.Contains(err.Error(), "10-x.conf:4") {
			t.Errorf("%s: Label=%s: got %v, want an error at 10-x.conf:4 containing %q", c.name, c.label, err, c.msg)
		}
	}
}
