// Package repartd reads partition definitions in systemd's repart.d(5) format.
//
// It turns *.conf files into typed Definitions and reports every unsupported
// key or invalid value as an error naming file:line and the key. It does no
// planning and touches no disk.
package repartd

import (
	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/encryption"
)

// Unset marks a byte-size setting that the definition does not set
// (systemd uses UINT64_MAX the same way).
const Unset = ^uint64(0)

// Tristate is a boolean setting that may be left unset.
type Tristate int8

const (
	TriUnset Tristate = iota - 1
	TriNo
	TriYes
)

// Set reports whether the setting was given in the definition.
func (t Tristate) Set() bool { return t != TriUnset }

// Definition is one [Partition] section after its drop-ins were applied.
type Definition struct {
	// File is the basename of the definition file (e.g. "10-root.conf"); it
	// orders definitions and appears in the plan's "file" column.
	File string
	// Path is the full path the file was read from.
	Path string
	// DropIns lists the drop-in files applied, in the order they were read.
	DropIns []string

	// Type is the partition type GUID resolved from Type=.
	Type uuid.UUID

	// Label is Label= (nil when unset; may point at "" for an explicit empty label).
	Label *string
	// UUID is UUID= (nil when unset; uuid.Nil for UUID=null).
	UUID *uuid.UUID

	Priority      int32
	Weight        uint32 // default 1000
	PaddingWeight uint32 // default 0

	// Sizes in bytes, already rounded like systemd-repart 252 rounds them:
	// minimums down to 4096, maximums up to 4096. Unset when not given; a
	// maximum within 4095 of 2^64 rounds up to Unset, as in systemd.
	SizeMin    uint64
	SizeMax    uint64
	PaddingMin uint64
	PaddingMax uint64

	// Format is the file system to create ("" for none): a name pkg/fstype
	// declares.
	Format string

	// Encrypt is Encrypt= (encryption.Off when unset). An encrypted new
	// partition without Format= gets ext4, as in 252.
	Encrypt encryption.Mode

	// KeyFile is KeyFile= (259): the key of this partition's key-file
	// slot ("" when unset: --key-file= or the empty key).
	KeyFile string
	// TPM2PCRs is TPM2PCRs= (259): the PCRs this partition's TPM2 key is
	// bound to, as PCR numbers joined by "+" (nil when unset, "" for
	// none).
	TPM2PCRs *string

	// Flags is Flags= (nil when unset).
	Flags *uint64

	NoAuto         Tristate
	ReadOnly       Tristate
	GrowFileSystem Tristate
	FactoryReset   bool

	// Warnings are lines ignored as systemd-repart 252 ignores them (a
	// Label= whose specifier has no value), each starting with file:line.
	Warnings []string

	// Lines maps each key that was set to the file:line of its last
	// assignment, so later stages can point at the culprit.
	Lines map[string]string
}

// Where returns the file:line of key's last assignment, or the file path
// when the key was not set.
func (d *Definition) Where(key string) string {
	if l, ok := d.Lines[key]; ok {
		return l
	}
	return d.Path
}
