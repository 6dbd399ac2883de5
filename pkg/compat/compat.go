// Package compat names the systemd-repart versions sprout mirrors and
// holds the one shape every version-dependent value takes: a list of rows,
// each the value from one version on (ByVersion). A rule that changed in
// systemd is one more row where the value is declared, never a version
// test in the code that uses it.
package compat

import (
	"fmt"
	"strconv"
)

// Version is a systemd version, as systemd numbers its releases (252,
// 257, …).
type Version int

// The versions sprout can mirror: every rule has a value for each of them.
const (
	Oldest Version = 252
	Newest Version = 262
)

// Default is the version mirrored when the caller asks for none (the zero
// Version, or no --compat=): the newest.
const Default = Newest

// Parse reads a version number such as "257". A version outside
// Oldest…Newest is an error: sprout has no rules for it.
func Parse(s string) (Version, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a systemd version number", s)
	}
	v := Version(n)
	if v < Oldest || v > Newest {
		return 0, fmt.Errorf("systemd %d is not a version sprout follows (%d to %d)", n, Oldest, Newest)
	}
	return v, nil
}

// OrDefault is v, or Default when v is the zero Version (not chosen).
func (v Version) OrDefault() Version {
	if v == 0 {
		return Default
	}
	return v
}

func (v Version) String() string { return strconv.Itoa(int(v)) }

// Row is a value that holds from systemd version Since on, until the next
// row of its ByVersion.
type Row[T any] struct {
	Since Version
	Value T
}

// ByVersion is a value as it changed over systemd's versions: rows in
// ascending order of Since, the first at Oldest. For example the smallest
// partition systemd-repart gives a file system, if it grew in 257:
//
//	ByVersion[uint64]{{Since: 252, Value: 1 << 20}, {Since: 257, Value: 16 << 20}}
type ByVersion[T any] []Row[T]

// Always is a value that has not changed in any version sprout mirrors.
func Always[T any](value T) ByVersion[T] { return ByVersion[T]{{Since: Oldest, Value: value}} }

// At is the value under version v (the zero Version means Default): the
// value of the last row whose Since is at most v.
func (b ByVersion[T]) At(v Version) T {
	v = v.OrDefault()
	var value T
	for _, r := range b {
		if r.Since > v {
			break
		}
		value = r.Value
	}
	return value
}

// Check reports rows that would make At's answer a guess: none at all,
// a first row after Oldest, rows out of order or outside Oldest…Newest.
// Declarations are checked by their packages' tests.
func (b ByVersion[T]) Check() error {
	if len(b) == 0 {
		return fmt.Errorf("no value for any version")
	}
	if b[0].Since != Oldest {
		return fmt.Errorf("the first value is for %d, not for %d: versions before it have none", b[0].Since, Oldest)
	}
	for i, r := range b {
		if r.Since > Newest {
			return fmt.Errorf("a value for %d, after the newest version sprout follows (%d)", r.Since, Newest)
		}
		if i > 0 && r.Since <= b[i-1].Since {
			return fmt.Errorf("the value for %d follows the one for %d: rows must be in ascending order", r.Since, b[i-1].Since)
		}
	}
	return nil
}
