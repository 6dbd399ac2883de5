package gpt

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Validate checks that t can be written to a disk of size bytes: the shape
// of the header and entry array, that the backup header sits at the last
// LBA (call Relocate on a grown disk), that every entry has a valid slot,
// a type, a name that fits, and lies inside the usable area without
// overlapping another. Encode runs it first; go-diskfs checks none of the
// LBAs and panics on some names.
func (t *Table) Validate(size int64) error {
	if err := t.validateLayout(size); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := t.validateEntries(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

func (t *Table) validateLayout(size int64) error {
	if !validSectorSize(t.SectorSize) {
		return fmt.Errorf("sector size %d is not one of 512, 1024, 2048, 4096", t.SectorSize)
	}
	if err := checkArrayShape(t.EntryCount, t.EntrySize, t.SectorSize); err != nil {
		return err
	}
	array := arraySectors(t.EntryCount, t.SectorSize)
	sectors := uint64(size) / uint64(t.SectorSize)
	if size <= 0 || sectors < 3+2*array {
		return fmt.Errorf("a disk of %d bytes is too small for a GPT with %d entries", size, t.EntryCount)
	}
	last := sectors - 1
	switch {
	case t.BackupLBA < last:
		return fmt.Errorf("backup header at LBA %d is not at the disk's last LBA %d (the disk grew; relocate the backup first)", t.BackupLBA, last)
	case t.BackupLBA > last:
		return fmt.Errorf("backup header at LBA %d is beyond the disk's last LBA %d (the disk is smaller than the table)", t.BackupLBA, last)
	case t.EntriesLBA < 2:
		return fmt.Errorf("primary entry array at LBA %d overlaps the protective MBR or primary header", t.EntriesLBA)
	case t.EntriesLBA+array > t.FirstUsableLBA:
		return fmt.Errorf("primary entry array (LBA %d-%d) overlaps the usable area starting at LBA %d", t.EntriesLBA, t.EntriesLBA+array-1, t.FirstUsableLBA)
	case t.FirstUsableLBA > t.LastUsableLBA:
		return fmt.Errorf("first usable LBA %d is after last usable LBA %d", t.FirstUsableLBA, t.LastUsableLBA)
	case t.LastUsableLBA >= t.BackupLBA-array:
		return fmt.Errorf("last usable LBA %d reaches the backup entry array at LBA %d", t.LastUsableLBA, t.BackupLBA-array)
	}
	return nil
}

func (t *Table) validateEntries() error {
	seen := make(map[int]bool, len(t.Entries))
	exts := make([]extent, 0, len(t.Entries))
	for _, e := range t.Entries {
		if e.Index < 1 || e.Index > int(t.EntryCount) {
			return fmt.Errorf("entry %d: slot index outside 1..%d", e.Index, t.EntryCount)
		}
		if seen[e.Index] {
			return fmt.Errorf("entry %d: slot used twice", e.Index)
		}
		seen[e.Index] = true
		if e.Type == uuid.Nil {
			// A zero type marks a slot as unused; the entry would vanish.
			return fmt.Errorf("entry %d: partition type GUID is zero", e.Index)
		}
		if err := checkName(e.Name); err != nil {
			return fmt.Errorf("entry %d: %w", e.Index, err)
		}
		exts = append(exts, extent{index: e.Index, first: e.FirstLBA, last: e.LastLBA})
	}
	return checkExtents(exts, t.FirstUsableLBA, t.LastUsableLBA)
}

// checkName refuses names that do not survive the 36 UTF-16 code unit
// name field unchanged. go-diskfs counts runes instead and panics on names
// of at most 36 runes but more than 36 code units (characters outside the
// BMP take two).
func checkName(name string) error {
	if !utf8.ValidString(name) {
		return fmt.Errorf("name %q is not valid UTF-8", name)
	}
	if strings.ContainsRune(name, 0) {
		return fmt.Errorf("name %q contains a NUL character", name)
	}
	if n := len(utf16.Encode([]rune(name))); n > nameUnits {
		return fmt.Errorf("name %q is %d UTF-16 code units long; the GPT allows %d", name, n, nameUnits)
	}
	return nil
}

// checkExtents checks that every extent is a non-empty range inside
// [firstUsable, lastUsable] and that no two overlap.
func checkExtents(exts []extent, firstUsable, lastUsable uint64) error {
	for _, e := range exts {
		switch {
		case e.first > e.last:
			return fmt.Errorf("entry %d: first LBA %d is after last LBA %d", e.index, e.first, e.last)
		case e.first < firstUsable:
			return fmt.Errorf("entry %d: first LBA %d is before the first usable LBA %d", e.index, e.first, firstUsable)
		case e.last > lastUsable:
			return fmt.Errorf("entry %d: last LBA %d is past the last usable LBA %d", e.index, e.last, lastUsable)
		}
	}
	sorted := slices.Clone(exts)
	slices.SortFunc(sorted, func(a, b extent) int { return cmp.Compare(a.first, b.first) })
	for i := 1; i < len(sorted); i++ {
		prev, cur := sorted[i-1], sorted[i]
		if cur.first <= prev.last {
			return fmt.Errorf("entry %d (LBA %d-%d) overlaps entry %d (LBA %d-%d)",
				cur.index, cur.first, cur.last, prev.index, prev.first, prev.last)
		}
	}
	return nil
}

func validSectorSize(n int) bool {
	return n == 512 || n == 1024 || n == 2048 || n == 4096
}
