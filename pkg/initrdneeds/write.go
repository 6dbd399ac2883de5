package initrdneeds

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/encryption"
	"github.com/sprout-initrd/sprout/pkg/fstype"
	"github.com/sprout-initrd/sprout/pkg/needs"
	"github.com/sprout-initrd/sprout/pkg/repartd"
	"github.com/sprout-initrd/sprout/pkg/sdvalue"
)

// WriteText writes the report in the line format the integrations read:
// one record a line, its fields separated by one tab, the first field the
// record's kind, "-" for an empty field (shells' read collapses empty
// fields between tabs). The kinds, in this order:
//
//	compat      OLDEST NEWEST DEFAULT   the systemd versions --compat= takes
//	                                    (only from a binary that takes it)
//	definition  SOURCE TARGET           a definition or drop-in, host path and initrd path
//	format      NAME FILE               a Format= value and the file that sets it
//	encrypt     MODE FILE               an Encrypt= mode other than off
//	program     NAME DEBIAN FEDORA ARCH WHY
//	library     NAME DEBIAN FEDORA ARCH WHY   loaded at run time (dlopen)
//	module      NAME required|optional WHY
//	file        PATH WHY                a host file to copy when it exists
//
// Readers skip kinds they do not know: new kinds may be added.
// A path with a tab or a newline cannot be written and is an error.
func WriteText(w io.Writer, r Report) error {
	b := bufio.NewWriter(w)
	var bad error
	line := func(fields ...string) {
		for i, f := range fields {
			if strings.ContainsAny(f, "\t\n") && bad == nil {
				bad = fmt.Errorf("%q contains a tab or a newline, which the line format cannot carry (use --json=)", f)
			}
			if f == "" {
				fields[i] = "-"
			}
		}
		b.WriteString(strings.Join(fields, "\t") + "\n")
	}
	if r.Pinnable {
		line("compat", compat.Oldest.String(), compat.Newest.String(), compat.Default.String())
	}
	for _, f := range r.Definitions {
		line("definition", f.Source, f.Target)
	}
	for _, u := range r.Formats {
		line("format", u.Name, u.File)
	}
	for _, u := range r.Encrypt {
		line("encrypt", u.Name, u.File)
	}
	for _, kind := range []string{KindProgram, KindLibrary, KindModule, KindFile} {
		for _, it := range r.Items {
			switch {
			case it.Kind != kind:
			case kind == KindProgram || kind == KindLibrary:
				line(it.Kind, it.Name, it.Package.Debian, it.Package.Fedora, it.Package.Arch, it.Why)
			case kind == KindModule:
				need := "required"
				if it.Optional {
					need = "optional"
				}
				line(it.Kind, it.Name, need, it.Why)
			default:
				line(it.Kind, it.Name, it.Why)
			}
		}
	}
	if bad != nil {
		return bad
	}
	return b.Flush()
}

// The JSON shapes: packages, and one set of needs.
type (
	packagesJSON struct {
		Debian  string `json:"debian,omitempty"`
		Fedora  string `json:"fedora,omitempty"`
		Arch    string `json:"arch,omitempty"`
		Nixpkgs string `json:"nixpkgs,omitempty"`
	}
	programJSON struct {
		Name     string       `json:"name"`
		Packages packagesJSON `json:"packages"`
		Why      string       `json:"why,omitempty"`
	}
	moduleJSON struct {
		Name     string `json:"name"`
		Optional bool   `json:"optional"`
		Why      string `json:"why,omitempty"`
	}
	fileJSON struct {
		Path string `json:"path"`
		Why  string `json:"why,omitempty"`
	}
	setJSON struct {
		Programs  []programJSON `json:"programs"`
		Libraries []programJSON `json:"libraries"`
		Modules   []moduleJSON  `json:"modules"`
		Files     []fileJSON    `json:"files"`
	}
	compatJSON struct {
		Oldest  int `json:"oldest"`
		Newest  int `json:"newest"`
		Default int `json:"default"`
	}
)

func packages(p needs.Package) packagesJSON {
	return packagesJSON{p.Debian, p.Fedora, p.Arch, p.Nixpkgs}
}

// compatRange is the --compat= range, or nil from a binary that cannot
// be pinned.
func compatRange(pinnable bool) *compatJSON {
	if !pinnable {
		return nil
	}
	return &compatJSON{int(compat.Oldest), int(compat.Newest), int(compat.Default)}
}

func emptySet() setJSON {
	return setJSON{Programs: []programJSON{}, Libraries: []programJSON{}, Modules: []moduleJSON{}, Files: []fileJSON{}}
}

// items turns report items into the JSON set, with their reasons.
func items(its []Item) setJSON {
	s := emptySet()
	for _, it := range its {
		switch it.Kind {
		case KindProgram:
			s.Programs = append(s.Programs, programJSON{it.Name, packages(it.Package), it.Why})
		case KindLibrary:
			s.Libraries = append(s.Libraries, programJSON{it.Name, packages(it.Package), it.Why})
		case KindModule:
			s.Modules = append(s.Modules, moduleJSON{it.Name, it.Optional, it.Why})
		case KindFile:
			s.Files = append(s.Files, fileJSON{it.Name, it.Why})
		}
	}
	return s
}

// set is one declaration's needs as JSON, without reasons.
func set(n needs.Set) setJSON {
	var r Report
	r.add(n, "")
	return items(r.Items)
}

// WriteJSON writes the report as one JSON object: compat, definitions,
// formats, encrypt (as in WriteText) and programs, libraries, modules and
// files, each with its packages and reason. pretty indents it.
func WriteJSON(w io.Writer, r Report, pretty bool) error {
	doc := struct {
		Compat      *compatJSON `json:"compat,omitempty"`
		Definitions []File      `json:"definitions"`
		Formats     []Use       `json:"formats"`
		Encrypt     []Use       `json:"encrypt"`
		setJSON
	}{compatRange(r.Pinnable), r.Definitions, r.Formats, r.Encrypt, items(r.Items)}
	return encode(w, doc, pretty)
}

// Declarations is the document the NixOS module reads
// (initrd/nixos/needs.json): the versions --compat= takes (when the
// binary takes it: pinnable), the boolean
// words (Encrypt=yes is key-file), the longest label, the format of an
// encrypted partition without Format=, sprout's own needs,
// and each format's and each Encrypt= mode's needs with their packages,
// nixpkgs' attribute among them.
func Declarations(pinnable bool) any {
	yes, no := sdvalue.BoolWords()
	formats := map[string]setJSON{}
	for _, name := range fstype.Names() {
		f, _ := fstype.Lookup(name)
		formats[name] = set(f.Needs())
	}
	modes := map[string]setJSON{}
	for _, m := range encryption.Modes() {
		modes[string(m.Mode)] = set(m.Needs)
	}
	return struct {
		Generated     string              `json:"_generated"`
		Compat        *compatJSON         `json:"compat,omitempty"`
		Booleans      map[string][]string `json:"booleans"`
		LabelMaxBytes int                 `json:"labelMaxBytes"`
		Encrypted     string              `json:"encryptedFormat"`
		Base          setJSON             `json:"base"`
		Formats       map[string]setJSON  `json:"formats"`
		Encrypt       map[string]setJSON  `json:"encrypt"`
	}{
		Generated:     "by `sprout --initrd-needs=all --json=pretty` (make nix-facts) from pkg/fstype, pkg/encryption, pkg/compat and pkg/sdvalue; do not edit",
		Compat:        compatRange(pinnable),
		Booleans:      map[string][]string{"true": yes, "false": no},
		LabelMaxBytes: repartd.MaxLabelBytes,
		Encrypted:     repartd.EncryptedFormat,
		Base:          set(Base()),
		Formats:       formats,
		Encrypt:       modes,
	}
}

// WriteDeclarations writes Declarations as JSON.
func WriteDeclarations(w io.Writer, pinnable, pretty bool) error {
	return encode(w, Declarations(pinnable), pretty)
}

func encode(w io.Writer, v any, pretty bool) error {
	e := json.NewEncoder(w)
	e.SetEscapeHTML(false)
	if pretty {
		e.SetIndent("", "  ")
	}
	return e.Encode(v)
}
