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

	// Format is the file system to create ("" for none). Any name is
	// accepted, as systemd-repart accepts it: it has no effect on a
	// partition that exists, and the planner refuses a new partition whose
	// format sprout cannot make (FormatKnown: a name pkg/fstype declares).
	Format string
	// Empty is Format=empty (systemd 258): no file system, the label
	// "_empty" unless Label= is set, NoAuto=yes unless NoAuto= is set, and
	// no encryption.
	Empty bool

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

	// VolumeLabel is VolumeLabel= (259), the LUKS2 label of an encrypted
	// new partition (nil: the version's default, see plan).
	VolumeLabel *string

	// MountPoints are the MountPoint= lines (256), in order: the fstab
	// entries --generate-fstab= writes for the partition.
	MountPoints []MountPoint
	// EncryptedVolume is EncryptedVolume= (256): the crypttab entry
	// --generate-crypttab= writes (nil when not set).
	EncryptedVolume *EncryptedVolume

	// SupplementFor is SupplementFor= (257): the name (file name without
	// ".conf") of the definition this one supplements ("" when not set).
	SupplementFor string

	// Subvolumes and DefaultSubvolume are Subvolumes= (255) and
	// DefaultSubvolume= (256). On a new, empty btrfs they create nothing
	// (the directories would have to come from MakeDirectories= or
	// CopyFiles=, which sprout does not run at boot).
	Subvolumes       []Subvolume
	DefaultSubvolume string

	// ImageKeys maps each image-building key that was set (CopyFiles=,
	// Verity=, Minimize=, …) to where it was set. They have no effect on
	// a partition that exists; sprout refuses a definition with a key that
	// fills the partition (ImageKey.Fills) when it would create it.
	ImageKeys []ImageKey

	// Warnings are lines ignored as systemd-repart 252 ignores them (a
	// Label= whose specifier has no value), each starting with file:line.
	Warnings []string

	// at is the file:line of the assignment being applied (setters record
	// it in the values that keep their own location).
	at string

	// Lines maps each key that was set to the file:line of its last
	// assignment, so later stages can point at the culprit.
	Lines map[string]string
}

// MountPoint is one MountPoint= line: where the partition is mounted and
// the options appended to the default ones (Options is nil when the line
// has no second field; it may point at "").
type MountPoint struct {
	Path    string
	Options *string
	// Where is the file:line of the assignment.
	Where string
}

// EncryptedVolume is EncryptedVolume=: the volume name under /dev/mapper
// (empty: luks-<LUKS UUID>), the key file ("" for "-") and the crypttab
// options.
type EncryptedVolume struct {
	Name, KeyFile, Options string
	Where                  string
}

// Subvolume is one path of Subvolumes= with its flags (ro, nodatacow).
type Subvolume struct {
	Path  string
	Flags []string
}

// ImageKey is an image-building key set in a definition.
type ImageKey struct {
	Key, Value string
	Where      string
	// Fills: the key puts content into a new partition (CopyFiles=,
	// CopyBlocks=, MakeDirectories=, MakeSymlinks=, Verity= other than
	// off, Minimize= other than off); the others only modify that.
	Fills bool
}

// Where returns the file:line of key's last assignment, or the file path
// when the key was not set.
func (d *Definition) Where(key string) string {
	if l, ok := d.Lines[key]; ok {
		return l
	}
	return d.Path
}
