package repartd

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sprout-initrd/sprout/pkg/encryption"
)

// The keys systemd added after 252 that act on a disk at boot, read as
// systemd-repart 262 reads them. Where 262 warns and ignores a line (a
// relative path, too many fields, an unknown flag), sprout refuses it
// with file:line like any other value it cannot honour.

// EmptyLabel is the partition label Format=empty gives when Label= is
// not set; systemd-sysupdate looks for it.
const EmptyLabel = "_empty"

func setMountPoint(d *Definition, v string) error {
	if v == "" {
		// 262 crashes on it (segmentation fault, exit 139).
		return errors.New("an empty MountPoint= does not reset the list (systemd-repart 262 crashes on it); remove the line instead")
	}
	f, err := splitFields(v, 2)
	if err != nil {
		return err
	}
	path, err := simplifyPath(f[0])
	if err != nil {
		return err
	}
	if err := tableSafe("the mount point", path); err != nil {
		return err
	}
	mp := MountPoint{Path: path, Where: d.at}
	if len(f) == 2 {
		if err := tableSafe("the mount options", f[1]); err != nil {
			return err
		}
		mp.Options = &f[1]
	}
	d.MountPoints = append(d.MountPoints, mp)
	return nil
}

func setEncryptedVolume(d *Definition, v string) error {
	if v == "" {
		d.EncryptedVolume = nil
		return nil
	}
	f, err := splitFields(v, 4)
	if err != nil {
		return err
	}
	f = append(f, "", "", "")[:4]
	name, keyFile, options, extra := f[0], f[1], f[2], f[3]
	if name != "" {
		if name == "." || name == ".." || strings.Contains(name, "/") {
			return fmt.Errorf("%q is not a valid volume name (a file name under /dev/mapper)", name)
		}
		if err := tableSafe("the volume name", name); err != nil {
			return err
		}
	}
	if err := tableSafe("the key file", keyFile); err != nil {
		return err
	}
	if err := tableSafe("the crypttab options", options); err != nil {
		return err
	}
	switch extra {
	case "":
	case "fixate-volume-key":
		return errors.New("fixate-volume-key (260) is not supported: sprout cannot put the volume key's hash into the crypttab")
	default:
		return fmt.Errorf("%q is not an extra option (only fixate-volume-key exists)", extra)
	}
	d.EncryptedVolume = &EncryptedVolume{Name: name, KeyFile: keyFile, Options: options, Where: d.at}
	return nil
}

// encryptedVolumeFields counts the fields of an EncryptedVolume= value
// (0 when it does not parse; the setter reports that).
func encryptedVolumeFields(v string) int {
	f, err := splitFields(v, 4)
	if err != nil {
		return 0
	}
	return len(f)
}

// setVolumeLabel takes the value after its specifiers were expanded, like
// Label= (262 reads both the same way: the same specifiers, the same
// 36-byte limit).
func setVolumeLabel(d *Definition, v string) error {
	if len(v) > MaxLabelBytes {
		return fmt.Errorf("%d bytes long; systemd-repart accepts at most %d bytes of UTF-8 and would ignore it", len(v), MaxLabelBytes)
	}
	d.VolumeLabel = &v
	return nil
}

func setSupplementFor(d *Definition, v string) error {
	if v != "" && (strings.Contains(v, "/") || v == "." || v == "..") {
		return fmt.Errorf("%q is not a definition name (a file name without .conf, such as 10-esp)", v)
	}
	d.SupplementFor = v
	return nil
}

func setSubvolumes(d *Definition, v string) error {
	if v == "" {
		d.Subvolumes = nil
		return nil
	}
	for _, word := range strings.Fields(v) {
		path, flags, _ := strings.Cut(word, ":")
		p, err := simplifyPath(path)
		if err != nil {
			return err
		}
		s := Subvolume{Path: p}
		if flags != "" {
			for _, f := range strings.Split(flags, ",") {
				if f != "ro" && f != "nodatacow" {
					return fmt.Errorf("%q is not a subvolume flag (ro, nodatacow)", f)
				}
				s.Flags = append(s.Flags, f)
			}
		}
		d.Subvolumes = append(d.Subvolumes, s)
	}
	return nil
}

func subvolumesUseNodatacow(v string) bool {
	for _, word := range strings.Fields(v) {
		if _, flags, ok := strings.Cut(word, ":"); ok {
			for _, f := range strings.Split(flags, ",") {
				if f == "nodatacow" {
					return true
				}
			}
		}
	}
	return false
}

func setDefaultSubvolume(d *Definition, v string) error {
	if v == "" {
		d.DefaultSubvolume = ""
		return nil
	}
	p, err := simplifyPath(v)
	if err != nil {
		return err
	}
	d.DefaultSubvolume = p
	return nil
}

// checkSubvolumes: DefaultSubvolume= must name one of Subvolumes= (262
// refuses otherwise, naming the file).
func (p *parser) checkSubvolumes() error {
	d := &p.def
	if d.DefaultSubvolume == "" {
		return nil
	}
	for _, s := range d.Subvolumes {
		if s.Path == d.DefaultSubvolume {
			return nil
		}
	}
	l := p.locs["DefaultSubvolume"]
	return &Error{File: l.file, Line: l.line, Key: "DefaultSubvolume",
		Msg: fmt.Sprintf("DefaultSubvolume=%s is not one of the paths in Subvolumes=", d.DefaultSubvolume)}
}

// applyEmpty gives Format=empty its meaning once the whole definition is
// read: the label "_empty" unless Label= is set, NoAuto=yes unless NoAuto=
// is set, and no encryption (262 makes no LUKS2 volume for it).
func (d *Definition) applyEmpty() {
	if !d.Empty {
		return
	}
	if d.Label == nil {
		l := EmptyLabel
		d.Label = &l
	}
	if !d.NoAuto.Set() {
		d.NoAuto = TriYes
	}
	d.Encrypt = encryption.Off
}

// HasEmptyLabel reports whether --defer-partitions-empty= selects the
// definition: its label is "_empty" (Format=empty without Label=, or
// Label=_empty).
func (d *Definition) HasEmptyLabel() bool { return d.Label != nil && *d.Label == EmptyLabel }

// Name is the definition's name for SupplementFor=: its file name without
// ".conf".
func (d *Definition) Name() string { return strings.TrimSuffix(d.File, ".conf") }

// SupplementTarget returns the index in defs of the definition d
// supplements (-1 when none). Load has checked that it exists.
func SupplementTarget(defs []Definition, d *Definition) int {
	if d.SupplementFor == "" {
		return -1
	}
	for i := range defs {
		if &defs[i] != d && defs[i].Name() == d.SupplementFor {
			return i
		}
	}
	return -1
}

// resolveSupplements checks SupplementFor= as systemd-repart 262 does:
// the target exists (and is not the definition itself), is no supplement
// itself and has no other supplement, and neither side uses Encrypt= or
// Verity= (CopyBlocks= is refused at boot anyway).
func resolveSupplements(defs []Definition) error {
	supplementOf := map[int]int{} // target → supplement
	for i := range defs {
		d := &defs[i]
		if d.SupplementFor == "" {
			continue
		}
		fail := func(msg string) error {
			file, line := splitWhere(d.Where("SupplementFor"))
			return &Error{File: file, Line: line, Key: "SupplementFor", Msg: msg}
		}
		t := SupplementTarget(defs, d)
		if t < 0 {
			return fail(fmt.Sprintf("no definition named %q (a file name without .conf) to supplement", d.SupplementFor))
		}
		target := &defs[t]
		if target.SupplementFor != "" {
			return fail(fmt.Sprintf("the target %s is itself a supplement (SupplementFor=%s)", target.File, target.SupplementFor))
		}
		if j, taken := supplementOf[t]; taken {
			return fail(fmt.Sprintf("the target %s already has a supplement: %s", target.File, defs[j].File))
		}
		supplementOf[t] = i
		if usesEncryptOrVerity(d) {
			return fail("SupplementFor= cannot be combined with Encrypt=, Verity= or CopyBlocks=")
		}
		if usesEncryptOrVerity(target) {
			return fail(fmt.Sprintf("the target %s uses Encrypt=, Verity= or CopyBlocks=", target.File))
		}
		if err := checkMerge(target, d); err != nil {
			return err
		}
	}
	return nil
}

func usesEncryptOrVerity(d *Definition) bool {
	_, blocks := d.imageKey("CopyBlocks")
	v, verity := d.imageKey("Verity")
	return d.Encrypt != encryption.Off || blocks || verity && v.Value != "off"
}

// Merged returns the target definition with its supplement merged in, as
// systemd-repart 257 merges them: Weight= and PaddingWeight= become the
// supplement's, the minimum sizes the larger of the two, the maximum
// sizes the smaller, and the image-building lists are joined. The result
// keeps the target's identity (file, type, label, format).
func Merged(target, supplement *Definition) Definition {
	m := *target
	m.Weight, m.PaddingWeight = supplement.Weight, supplement.PaddingWeight
	larger := func(a, b uint64) uint64 {
		switch {
		case a == Unset:
			return b
		case b == Unset:
			return a
		}
		return max(a, b)
	}
	m.SizeMin = larger(target.SizeMin, supplement.SizeMin)
	m.PaddingMin = larger(target.PaddingMin, supplement.PaddingMin)
	m.SizeMax = min(target.SizeMax, supplement.SizeMax) // Unset is the largest value
	m.PaddingMax = min(target.PaddingMax, supplement.PaddingMax)
	m.ImageKeys = slices.Concat(target.ImageKeys, supplement.ImageKeys)
	return m
}

// checkMerge refuses a supplement whose merge gives a minimum above the
// maximum (262 refuses it when it reads the files).
func checkMerge(target, supplement *Definition) error {
	m := Merged(target, supplement)
	for _, r := range []struct {
		what   string
		lo, hi uint64
	}{
		{"SizeMinBytes= larger than SizeMaxBytes=", m.SizeMin, m.SizeMax},
		{"PaddingMinBytes= larger than PaddingMaxBytes=", m.PaddingMin, m.PaddingMax},
	} {
		if r.lo != Unset && r.hi != Unset && r.lo > r.hi {
			file, line := splitWhere(supplement.Where("SupplementFor"))
			return &Error{File: file, Line: line, Key: "SupplementFor",
				Msg: fmt.Sprintf("%s (%d > %d) when merged with the target %s", r.what, r.lo, r.hi, target.File)}
		}
	}
	return nil
}
