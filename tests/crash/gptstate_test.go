package crash

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// What "the GPT left by a crash is valid" means here.
//
// A GPT is kept twice: the primary (header in LBA 1, entry array after
// it) and the backup (header in the last LBA, array before it). A copy is
// INTACT when its header has the signature, a correct header CRC, its own
// LBA in MyLBA, an entry array inside the disk, and a correct array CRC
// (harness.GPTCopy.Intact).
//
// The disk is read by the kernel (block/partitions/efi.c), libfdisk and
// sprout the same way: the primary if it is intact, otherwise the backup in
// the disk's LAST LBA. (sgdisk differs: it follows the primary header's
// AlternateLBA even when the primary's array is bad; see sgdiskBackup.) A
// disk that grew has its old backup at the old end: that copy is intact in
// the OLD state, but it is not "in the last LBA", so it only counts as a
// second copy, never as the one a reader falls back to. This is also why
// sgdisk -v reports a problem for the untouched old disk ("the secondary
// header ... doesn't reside at the end of the disk").
//
// A run that grows a disk and adds partitions writes two tables: first
// the old table RELOCATED (its backup moved to the new end, LastUsableLBA
// raised, the protective MBR sized for the new disk: what `sfdisk
// --relocate gpt-bak-std` makes of the old disk), then, after the new
// partitions' ranges are wiped and formatted, the NEW table. The wipe
// usually overwrites the old backup, which lies in the first new range;
// the relocation first keeps two valid copies on the disk throughout.
// So there are three known tables: old, relocated and new.
//
// The disk after a crash is VALID when
//  1. every intact copy — in LBA 1, in the last LBA, and where the old
//     backup was — is byte for byte (header sector and entry array) the
//     copy of the old, the relocated or the new table that belongs at
//     that LBA: never a fourth table (a mix of old and new entries or
//     header fields);
//  2. the table a reader gets (rule above) exists and is the old, the
//     relocated or the new one — a disk on which no reader finds a table
//     is not valid;
//  3. the protective MBR in LBA 0 is the old, the relocated or the new
//     one;
//  4. when any intact copy is the new table, the new partitions' file
//     systems are complete (checked by the caller with fsck): an entry
//     never points at a half-made file system;
//  5. as long as no intact copy is the relocated or the new table, the
//     old backup at the old LBA is intact: nothing may write there before
//     the relocation has put a second copy at the new end. Once a
//     relocated or new copy is intact, the old backup area is free space
//     and may hold anything.
// The tools must agree: sfdisk --json (libfdisk) shows the table of rule
// 2; sgdisk loads one of the three tables, and sgdisk -v reports nothing
// it does not also report for the old, the relocated or the new disk,
// except damage to a copy that the crash explains
// (reference.unexplainedSgdisk).

// diskGPT is everything GPT-related on one disk image.
type diskGPT struct {
	MBR     []byte
	Primary harness.GPTCopy // LBA 1
	AtEnd   harness.GPTCopy // the last LBA
	Other   harness.GPTCopy // the old backup's LBA, when it is not the last one
}

func readDiskGPT(img string, ss int64, oldBackupLBA uint64) (*diskGPT, error) {
	f, err := os.Open(img)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	last := uint64(size/ss) - 1
	d := &diskGPT{MBR: make([]byte, ss)}
	if _, err := f.ReadAt(d.MBR, 0); err != nil {
		return nil, err
	}
	d.Primary = harness.ReadGPTCopy(f, size, ss, 1)
	d.AtEnd = harness.ReadGPTCopy(f, size, ss, last)
	if oldBackupLBA != last {
		d.Other = harness.ReadGPTCopy(f, size, ss, oldBackupLBA)
	}
	return d, nil
}

// knownTables are the three tables a valid disk may show, copy by copy:
// the old one (the disk before the run), the relocated one (the old disk
// after `sfdisk --relocate gpt-bak-std`) and the new one (the disk after
// an uninterrupted run).
type knownTables struct {
	Old, Relocated, New *diskGPT
}

// Names of the known tables, as versionOf and gptVerdict use them.
const (
	tableOld       = "old"
	tableRelocated = "relocated"
	tableNew       = "new"
)

func (k knownTables) all() []struct {
	name string
	d    *diskGPT
} {
	return []struct {
		name string
		d    *diskGPT
	}{{tableOld, k.Old}, {tableRelocated, k.Relocated}, {tableNew, k.New}}
}

// versionOf says which known table an intact copy at c.LBA is: "old",
// "relocated", "new", or "" for none. A copy that two tables share (the
// relocated disk keeps the old backup at the old LBA) is the first one's.
func (k knownTables) versionOf(c harness.GPTCopy) string {
	for _, v := range k.all() {
		for _, kc := range []harness.GPTCopy{v.d.Primary, v.d.AtEnd, v.d.Other} {
			if kc.Intact() && kc.LBA == c.LBA && bytes.Equal(kc.Header, c.Header) && bytes.Equal(kc.Entries, c.Entries) {
				return v.name
			}
		}
	}
	return ""
}

// mbrOf names the known protective MBRs equal to mbr ("relocated=new"
// when those two are the same bytes), or "" for none.
func (k knownTables) mbrOf(mbr []byte) string {
	var names []string
	for _, v := range k.all() {
		if bytes.Equal(mbr, v.d.MBR) {
			names = append(names, v.name)
		}
	}
	return strings.Join(names, "=")
}

// gptVerdict is the outcome of checking a crashed disk.
type gptVerdict struct {
	Effective string // the table readers get: "old", "relocated", "new" or ""
	AnyNew    bool   // some intact copy is the new table
	// Moved: some intact copy is the relocated or the new table, so the
	// old backup area is free space (rule 5).
	Moved      bool
	State      string   // a short description, for the histogram
	Violations []string // broken rules; empty when the disk is valid
}

// judge applies rules 1–3 and 5 to a crashed disk.
func (k knownTables) judge(d *diskGPT) gptVerdict {
	var v gptVerdict
	describe := func(name string, c harness.GPTCopy) string {
		if c.Header == nil && c.Problem == "" {
			return ""
		}
		switch {
		case c.Problem == "no GPT signature":
			return name + ": none"
		case !c.Intact():
			return fmt.Sprintf("%s: damaged (%s)", name, c.Problem)
		}
		ver := k.versionOf(c)
		switch ver {
		case "":
			v.Violations = append(v.Violations, fmt.Sprintf("the intact GPT copy at LBA %d (%s) is neither the old, the relocated nor the new table", c.LBA, name))
			return name + ": a fourth table"
		case tableNew:
			v.AnyNew = true
			v.Moved = true
		case tableRelocated:
			v.Moved = true
		}
		return name + ": " + ver
	}
	parts := []string{describe("primary", d.Primary), describe("last LBA", d.AtEnd)}
	if other := describe("old backup LBA", d.Other); other != "" {
		parts = append(parts, other)
	}
	switch {
	case d.Primary.Intact():
		v.Effective = k.versionOf(d.Primary)
	case d.AtEnd.Intact():
		v.Effective = k.versionOf(d.AtEnd)
	default:
		v.Violations = append(v.Violations, "neither LBA 1 nor the last LBA holds an intact GPT: the kernel and libfdisk find no table")
	}
	// Rule 5. k.Old.Other is the old backup when the old disk had its
	// backup elsewhere than in the last LBA (a disk that grew).
	if !v.Moved && k.Old.Other.Intact() && k.versionOf(d.Other) != tableOld {
		what := d.Other.Problem
		if d.Other.Intact() {
			what = "not the old table's"
		}
		v.Violations = append(v.Violations, fmt.Sprintf(
			"the old backup GPT at LBA %d is gone (%s) while no copy of the relocated or the new table is intact: the disk is down to one copy (was the old backup area written before the relocation?)",
			d.Other.LBA, what))
	}
	mbr := k.mbrOf(d.MBR)
	if mbr == "" {
		mbr = "a fourth MBR"
		v.Violations = append(v.Violations, "the protective MBR is neither the old, the relocated nor the new one")
	}
	parts = append(parts, "PMBR: "+mbr)
	read := v.Effective
	if read == "" {
		read = "none"
	}
	v.State = fmt.Sprintf("reads %s [%s]", read, strings.Join(parts, "; "))
	return v
}

// sameTable reports the differences between a disk's table copies and a
// known disk's: the primary, the backup in the last LBA and the PMBR.
func sameTable(want, got *diskGPT) []string {
	var d []string
	cmp := func(name string, w, g harness.GPTCopy) {
		switch {
		case w.Intact() != g.Intact():
			d = append(d, fmt.Sprintf("%s: intact=%v (%s), want intact=%v", name, g.Intact(), g.Problem, w.Intact()))
		case !bytes.Equal(w.Header, g.Header):
			d = append(d, name+": header differs")
		case !bytes.Equal(w.Entries, g.Entries):
			d = append(d, name+": entry array differs")
		}
	}
	cmp("primary GPT", want.Primary, got.Primary)
	cmp("backup GPT in the last LBA", want.AtEnd, got.AtEnd)
	if !bytes.Equal(want.MBR, got.MBR) {
		d = append(d, "protective MBR differs")
	}
	return d
}
