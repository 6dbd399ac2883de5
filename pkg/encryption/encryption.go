// Package encryption declares the Encrypt= modes of repart.d — which keys
// unlock a new partition's LUKS2 volume, and what each mode needs from the
// system (programs, libraries, kernel modules, packages) — with the LUKS2
// facts systemd-repart's volumes have and the check the planner makes
// before any write. One file per mode (keyfile.go, tpm2.go,
// keyfiletpm2.go) holds everything about it. It does no I/O: pkg/luks runs
// cryptsetup and systemd-cryptenroll, and probes what the system has.
package encryption

import (
	"strings"

	"github.com/sprout-initrd/sprout/pkg/needs"
)

// Mode is an Encrypt= mode; Off ("") is no encryption.
type Mode string

// Off is a partition without encryption (Encrypt=off, or not set).
const Off Mode = ""

// Declaration is everything about one mode.
type Declaration struct {
	Mode Mode
	// KeyFile: the volume gets a key slot for the --key-file= key (the
	// empty key by default).
	KeyFile bool
	// TPM2: the volume gets a key sealed to the TPM2, and the
	// systemd-tpm2 token that unlocks it at boot.
	TPM2 bool
	// Needs is what making the volume, and unlocking it at boot, needs.
	Needs needs.Set
}

// modes lists the declarations, in the order error messages name them.
// They are made when asked for, not before main: a boot without
// Encrypt= never needs them (docs/benchmarks.md).
func modes() []Declaration { return []Declaration{keyFile(), tpm2(), keyFileTPM2()} }

// Modes returns every mode's declaration.
func Modes() []Declaration { return modes() }

// Lookup returns the declaration of the mode named name (its Encrypt=
// value); "off" and the boolean words are the parser's to read.
func Lookup(name string) (Declaration, bool) {
	for _, d := range modes() {
		if string(d.Mode) == name && d.Mode != Off {
			return d, true
		}
	}
	return Declaration{}, false
}

// Names lists the Encrypt= values that name a mode, "off" first, for
// messages: "off, key-file, tpm2 or key-file+tpm2".
func Names() string {
	names := []string{"off"}
	for _, d := range modes() {
		names = append(names, string(d.Mode))
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// declaration is m's declaration; Off has the zero one.
func (m Mode) declaration() Declaration {
	if m == Off {
		return Declaration{}
	}
	d, _ := Lookup(string(m))
	return d
}

// UsesKeyFile reports whether the volume gets the key file's key slot.
func (m Mode) UsesKeyFile() bool { return m.declaration().KeyFile }

// UsesTPM2 reports whether a TPM2-sealed key is enrolled.
func (m Mode) UsesTPM2() bool { return m.declaration().TPM2 }

// Needs is what the mode needs from the system (nothing for Off).
func (m Mode) Needs() needs.Set { return m.declaration().Needs }
