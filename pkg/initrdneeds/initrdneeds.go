// Package initrdneeds says what an initrd must carry for sprout to grow a
// disk from a set of repart.d definitions: the definition files and where
// they go, and the programs, libraries, kernel modules and host files that
// their Format= and Encrypt= values need, each with the packages that ship
// it and the definition that asked for it. `sprout --initrd-needs` prints
// it for the dracut module, the initramfs-tools hook and `make deb`, so
// none of them reads repart.d or keeps a list of formats of its own; the
// NixOS module reads the declarations document (Declarations, `sprout
// --initrd-needs=all --json=pretty`, committed as initrd/nixos/needs.json).
//
// Everything here is computed from the parsed definitions and the
// declarations of pkg/fstype and pkg/encryption; it does no I/O except
// writing the report.
package initrdneeds

import (
	"path"
	"path/filepath"

	"github.com/sprout-initrd/sprout/pkg/encryption"
	"github.com/sprout-initrd/sprout/pkg/fstype"
	"github.com/sprout-initrd/sprout/pkg/needs"
	"github.com/sprout-initrd/sprout/pkg/repartd"
)

// TargetDir is where the initrd keeps the definitions: the first directory
// of the repart.d search path, which sprout reads there.
const TargetDir = "/etc/repart.d"

// Base is what sprout needs in every initrd, whatever the definitions
// say: it formats new partitions through loop devices.
func Base() needs.Set {
	return needs.Set{Modules: []needs.Module{{Name: "loop"}}}
}

// baseWhy is the reason given for Base's items.
const baseWhy = "sprout (formats through loop devices)"

// File is one definition file or drop-in: where it is read from on the
// host and where the initrd gets it.
type File struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// Use is a Format= or Encrypt= value and the definition file that sets it.
type Use struct {
	Name string `json:"name"`
	File string `json:"file"`
}

// Kinds of Item, as the first field of a report line.
const (
	KindProgram = "program"
	KindLibrary = "library"
	KindModule  = "module"
	KindFile    = "file"
)

// Item is one thing the initrd needs, with the first reason found for it
// ("/etc/repart.d/20-var.conf: Format=xfs").
type Item struct {
	Kind     string        `json:"kind"`
	Name     string        `json:"name"`
	Package  needs.Package `json:"-"`
	Optional bool          `json:"optional,omitempty"`
	Why      string        `json:"why"`
}

// Report is what an initrd needs for one set of definitions.
type Report struct {
	// Pinnable: the binary takes --compat=, so an initrd may pin the
	// systemd version it behaves as (the report then names the range).
	Pinnable    bool   `json:"-"`
	Definitions []File `json:"definitions"`
	Formats     []Use  `json:"formats"`
	Encrypt     []Use  `json:"encrypt"`
	Items       []Item `json:"-"`
}

// ForDefinitions is the report for definitions as repartd.Load returned
// them (the winners of the search path, with their drop-ins).
func ForDefinitions(defs []repartd.Definition, pinnable bool) Report {
	r := Report{Pinnable: pinnable, Definitions: []File{}, Formats: []Use{}, Encrypt: []Use{}}
	r.add(Base(), baseWhy)
	for _, d := range defs {
		r.Definitions = append(r.Definitions, File{d.Path, path.Join(TargetDir, d.File)})
		for _, drop := range d.DropIns {
			r.Definitions = append(r.Definitions, File{drop, path.Join(TargetDir, d.File+".d", filepath.Base(drop))})
		}
		if d.Format != "" {
			why := d.Path + ": Format=" + d.Format
			if _, set := d.Lines["Format"]; !set {
				// 252 makes ext4 inside a volume without Format=.
				why = d.Path + ": Encrypt=" + string(d.Encrypt) + " (" + d.Format + " inside)"
			}
			r.Formats = append(r.Formats, Use{d.Format, d.Path})
			if f, ok := fstype.Lookup(d.Format); ok {
				r.add(f.Needs(), why)
			}
		}
		if d.Encrypt != encryption.Off {
			r.Encrypt = append(r.Encrypt, Use{string(d.Encrypt), d.Path})
			r.add(d.Encrypt.Needs(), d.Path+": Encrypt="+string(d.Encrypt))
		}
	}
	return r
}

// All is the report for every format and mode sprout declares, each item
// with the first Format= or Encrypt= that needs it: what a package that
// ships sprout may have to suggest.
func All(pinnable bool) Report {
	r := Report{Pinnable: pinnable, Definitions: []File{}, Formats: []Use{}, Encrypt: []Use{}}
	r.add(Base(), baseWhy)
	for _, name := range fstype.Names() {
		f, _ := fstype.Lookup(name)
		r.Formats = append(r.Formats, Use{Name: name})
		r.add(f.Needs(), "Format="+name)
	}
	for _, m := range encryption.Modes() {
		r.Encrypt = append(r.Encrypt, Use{Name: string(m.Mode)})
		r.add(m.Needs, "Encrypt="+string(m.Mode))
	}
	return r
}

// add records what s holds that the report does not have yet.
func (r *Report) add(s needs.Set, why string) {
	has := func(kind, name string) bool {
		for _, it := range r.Items {
			if it.Kind == kind && it.Name == name {
				return true
			}
		}
		return false
	}
	put := func(it Item) {
		if !has(it.Kind, it.Name) {
			r.Items = append(r.Items, it)
		}
	}
	for _, p := range s.Programs {
		put(Item{Kind: KindProgram, Name: p.Name, Package: p.Package, Why: why})
	}
	for _, l := range s.Libraries {
		put(Item{Kind: KindLibrary, Name: l.Name, Package: l.Package, Why: why})
	}
	for _, m := range s.Modules {
		put(Item{Kind: KindModule, Name: m.Name, Optional: m.Optional, Why: why})
	}
	for _, f := range s.Files {
		put(Item{Kind: KindFile, Name: f, Why: why})
	}
}
