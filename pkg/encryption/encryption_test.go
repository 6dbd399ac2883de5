package encryption

import (
	"slices"
	"testing"

	"github.com/sprout-initrd/sprout/pkg/needs"
)

func programs(s needs.Set) []string {
	var out []string
	for _, p := range s.Programs {
		out = append(out, p.Name)
	}
	return out
}

// TestModes: each mode's key slots and what it needs, as its file
// declares them.
func TestModes(t *testing.T) {
	for _, c := range []struct {
		mode          Mode
		keyFile, tpm2 bool
		programs      []string
	}{
		{KeyFile, true, false, []string{"cryptsetup"}},
		{TPM2, false, true, []string{"cryptsetup", "systemd-cryptenroll"}},
		{KeyFileTPM2, true, true, []string{"cryptsetup", "systemd-cryptenroll"}},
		{Off, false, false, nil},
	} {
		if c.mode.UsesKeyFile() != c.keyFile || c.mode.UsesTPM2() != c.tpm2 {
			t.Errorf("%q: key file %v, TPM2 %v; want %v, %v", c.mode, c.mode.UsesKeyFile(), c.mode.UsesTPM2(), c.keyFile, c.tpm2)
		}
		if got := programs(c.mode.Needs()); !slices.Equal(got, c.programs) {
			t.Errorf("%q needs programs %v, want %v", c.mode, got, c.programs)
		}
		n := c.mode.Needs()
		hasModule := slices.ContainsFunc(n.Modules, func(m needs.Module) bool { return m.Name == "dm_crypt" && !m.Optional })
		if hasModule != (c.mode != Off) {
			t.Errorf("%q: needs dm_crypt = %v", c.mode, hasModule)
		}
		hasTSS := slices.ContainsFunc(n.Libraries, func(l needs.Library) bool { return l.Name == "libtss2-esys.so.0" })
		if hasTSS != c.tpm2 {
			t.Errorf("%q: needs the tpm2-tss libraries = %v, want %v", c.mode, hasTSS, c.tpm2)
		}
	}
}

// TestDeclarations: every program and library a mode needs names its
// Debian package (the integrations tell the user what to install).
func TestDeclarations(t *testing.T) {
	seen := map[Mode]bool{}
	for _, d := range Modes() {
		if d.Mode == Off || seen[d.Mode] {
			t.Errorf("mode %q is declared twice or is Off", d.Mode)
		}
		seen[d.Mode] = true
		if got, ok := Lookup(string(d.Mode)); !ok || got.Mode != d.Mode {
			t.Errorf("Lookup(%q) = %v, %v", d.Mode, got.Mode, ok)
		}
		for _, p := range d.Needs.Programs {
			if p.Package.Debian == "" {
				t.Errorf("%s: program %s has no Debian package", d.Mode, p.Name)
			}
		}
		for _, l := range d.Needs.Libraries {
			if l.Package.Debian == "" {
				t.Errorf("%s: library %s has no Debian package", d.Mode, l.Name)
			}
		}
	}
	for _, name := range []string{"", "off", "yes", "tpm2+key-file", "TPM2"} {
		if _, ok := Lookup(name); ok {
			t.Errorf("Lookup(%q) found a mode", name)
		}
	}
	if got, want := Names(), "off, key-file, tpm2 or key-file+tpm2"; got != want {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	if err := MinimumOverhead.Check(); err != nil {
		t.Errorf("MinimumOverhead: %v", err)
	}
	if got := MinimumOverhead.At(252); got != MetadataSize {
		t.Errorf("MinimumOverhead under 252 = %d, want the 16 MiB of 252 (%d)", got, MetadataSize)
	}
}
