package compat

import "fmt"

// A Change is one systemd-repart behaviour that changed between the
// versions sprout mirrors: under a version before Since sprout behaves the
// old way, from Since on the new way. Every Change is declared once, in
// Changes; code asks c.In(v), never compares version numbers itself.
// Values that changed (a file system's minimum size, ...) are ByVersion
// rows where the value is declared instead.
type Change struct {
	Since Version
	// Name is a short handle for messages and tests.
	Name string
	// What is the behaviour from Since on, and how it was before.
	What string
	// Evidence says where Since comes from: the NEWS entry that names the
	// version, or, where NEWS is silent, the oracles that bracket it.
	Evidence string
}

// In reports whether the change applies under version v (the zero
// Version means Default).
func (c *Change) In(v Version) bool { return v.OrDefault() >= c.Since }

func (c *Change) String() string { return fmt.Sprintf("%s (systemd %d)", c.Name, c.Since) }

// Require is the check for a key or flag systemd-repart added in version
// since: nil under since or later, otherwise an error saying which
// version added it (callers prefix file:line or the flag). For example
//
//	if err := compat.Require(v, 259, "TPM2PCRs="); err != nil { ... }
func Require(v, since Version, what string) error {
	if v.OrDefault() >= since {
		return nil
	}
	return fmt.Errorf("%s needs systemd-repart %d or later, but --compat=%d follows systemd-repart %d", what, since, v.OrDefault(), v.OrDefault())
}
