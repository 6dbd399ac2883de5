package repartd

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sprout-initrd/sprout/pkg/sdvalue"
)

// Image-building keys: they fill a new partition with content (files,
// blocks, directories, a Verity tree) or modify how that is done. Image
// builders (mkosi, NixOS's image.repart) share their definitions with the
// first boot, where the partitions they filled already exist; there the
// keys have no effect, in systemd-repart too. sprout accepts them on such
// a partition and refuses them, naming file:line, on a partition it would
// create: it never creates content at boot (docs/compatibility.md).

// fillingKeys are the keys that put content into a new partition when
// their value is not empty (or, for Verity= and Minimize=, not "off").
var fillingKeys = map[string]bool{
	"CopyFiles": true, "CopyBlocks": true, "MakeDirectories": true, "MakeSymlinks": true,
	"Verity": true, "Minimize": true,
}

// listKeys accumulate their lines; an empty value clears the list.
var listKeys = map[string]bool{
	"CopyFiles": true, "MakeDirectories": true, "MakeSymlinks": true,
	"ExcludeFiles": true, "ExcludeFilesTarget": true,
}

func imageKey(key string) setting {
	return func(d *Definition, v string) error {
		fills := fillingKeys[key] && v != ""
		switch key {
		case "Verity":
			switch v {
			case "", "off", "data", "hash", "signature":
			default:
				return fmt.Errorf("not a Verity= mode (off, data, hash, signature)")
			}
			fills = v != "" && v != "off"
		case "Minimize":
			switch m := strings.ToLower(v); {
			case m == "" || m == "best" || m == "guess" || m == "off":
				fills = m == "best" || m == "guess"
			default:
				b, err := sdvalue.ParseBool(v)
				if err != nil {
					return fmt.Errorf("not a Minimize= mode (off, best, guess or a boolean)")
				}
				fills = b
			}
		case "CopyFiles", "ExcludeFiles", "ExcludeFilesTarget", "MakeDirectories":
			for _, w := range strings.Fields(v) {
				path, _, _ := strings.Cut(w, ":")
				if !strings.HasPrefix(path, "/") {
					return fmt.Errorf("%q is not an absolute path", path)
				}
			}
		case "VerityDataBlockSizeBytes", "VerityHashBlockSizeBytes":
			if v != "" {
				n, err := sdvalue.Unsigned(v, 64)
				if err != nil || n < 512 || n > 4096 || n&(n-1) != 0 {
					return fmt.Errorf("not a power of 2 between 512 and 4096")
				}
			}
		}
		if v == "" || !listKeys[key] {
			// An empty value resets; a scalar key's last line wins.
			d.ImageKeys = slices.DeleteFunc(d.ImageKeys, func(k ImageKey) bool { return k.Key == key })
		}
		if v != "" {
			d.ImageKeys = append(d.ImageKeys, ImageKey{Key: key, Value: v, Where: d.at, Fills: fills})
		}
		return nil
	}
}

// imageKey returns the last assignment of key, if any.
func (d *Definition) imageKey(key string) (ImageKey, bool) {
	for i := len(d.ImageKeys) - 1; i >= 0; i-- {
		if d.ImageKeys[i].Key == key {
			return d.ImageKeys[i], true
		}
	}
	return ImageKey{}, false
}

// Fills returns the first key that would put content into the partition
// if it were created (ok false when none does).
func (d *Definition) Fills() (ImageKey, bool) {
	for _, k := range d.ImageKeys {
		if k.Fills {
			return k, true
		}
	}
	return ImageKey{}, false
}

// checkImageKeys refuses the combinations systemd-repart 262 refuses
// whether or not the partition exists (observed: exit 1, naming the file).
func (p *parser) checkImageKeys() error {
	d := &p.def
	fail := func(k ImageKey, msg string) error {
		file, line := splitWhere(k.Where)
		return &Error{File: file, Line: line, Key: k.Key, Msg: msg}
	}
	verity, hasVerity := d.imageKey("Verity")
	verityOn := hasVerity && verity.Value != "off"
	if k, ok := d.imageKey("VerityMatchKey"); ok && !verityOn {
		return fail(k, `VerityMatchKey= can only be set if Verity= is not "off"`)
	}
	if _, ok := d.imageKey("VerityMatchKey"); verityOn && !ok && verity.Value != "" {
		return fail(verity, fmt.Sprintf("VerityMatchKey= must be set if Verity=%s", verity.Value))
	}
	if k, ok := d.imageKey("CopyBlocks"); ok {
		for _, other := range []string{"CopyFiles", "MakeDirectories", "MakeSymlinks"} {
			if _, both := d.imageKey(other); both {
				return fail(k, "CopyBlocks= cannot be combined with "+other+"=")
			}
		}
		if d.Format != "" || d.Empty {
			return fail(k, "CopyBlocks= cannot be combined with Format=")
		}
	}
	if k, ok := d.imageKey("Minimize"); ok && strings.EqualFold(k.Value, "best") {
		switch {
		case d.Format == "btrfs", readOnlyFormats[d.Format], verity.Value == "hash":
		default:
			return fail(k, "Minimize=best can only be used with read-only file systems, btrfs, or Verity=hash")
		}
	}
	return nil
}

// readOnlyFormats are the file systems systemd-repart can only make with
// their content (from CopyFiles=).
var readOnlyFormats = map[string]bool{"squashfs": true, "erofs": true, "cramfs": true, "iso9660": true}

// Verity returns the Verity= mode ("off" when not set).
func (d *Definition) Verity() string {
	if k, ok := d.imageKey("Verity"); ok {
		return k.Value
	}
	return "off"
}
