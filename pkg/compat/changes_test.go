package compat

import (
	"os"
	"strings"
	"testing"
)

func TestChangesAreDeclaredOnce(t *testing.T) {
	names := map[string]bool{}
	prev := Oldest
	for _, c := range Changes {
		if c.Since <= Oldest || c.Since > Newest {
			t.Errorf("%s: Since %d is outside %d…%d (a change needs a version before it)", c.Name, c.Since, Oldest+1, Newest)
		}
		if c.Since < prev {
			t.Errorf("%s (%d) is listed after a change of %d: keep Changes oldest first", c.Name, c.Since, prev)
		}
		prev = c.Since
		if names[c.Name] {
			t.Errorf("%s is declared twice", c.Name)
		}
		names[c.Name] = true
		if c.What == "" || c.Evidence == "" {
			t.Errorf("%s: What and Evidence must say what changed and how the version is known", c.Name)
		}
	}
}

func TestIn(t *testing.T) {
	c := &Change{Since: 257}
	for v, want := range map[Version]bool{252: false, 256: false, 257: true, 262: true, 0: Default >= 257} {
		if got := c.In(v); got != want {
			t.Errorf("In(%d) = %v, want %v", v, got, want)
		}
	}
}

func TestRequire(t *testing.T) {
	if err := Require(259, 259, "TPM2PCRs="); err != nil {
		t.Errorf("Require(259, 259) = %v", err)
	}
	err := Require(257, 259, "TPM2PCRs=")
	if err == nil || !strings.Contains(err.Error(), "TPM2PCRs= needs systemd-repart 259 or later") || !strings.Contains(err.Error(), "--compat=257") {
		t.Errorf("Require(257, 259) = %v", err)
	}
	if err := Require(0, Newest, "x"); err != nil {
		t.Errorf("the default version has everything: %v", err)
	}
}

// docs/compatibility.md has one row per change, naming it.
func TestChangesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/compatibility.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range Changes {
		if !strings.Contains(string(doc), "`"+c.Name+"`") {
			t.Errorf("docs/compatibility.md does not name the change `%s` (%d)", c.Name, c.Since)
		}
	}
}
