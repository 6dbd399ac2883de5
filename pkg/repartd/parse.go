package repartd

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/encryption"
	"github.com/sprout-initrd/sprout/pkg/fstype"
	"github.com/sprout-initrd/sprout/pkg/parttype"
	"github.com/sprout-initrd/sprout/pkg/pollfree"
	"github.com/sprout-initrd/sprout/pkg/sdvalue"
)

// Defaults of a definition before any setting is applied (repart.d(5)).
const (
	DefaultWeight        = 1000
	DefaultPaddingWeight = 0
	// MaxWeight is the largest Weight=/PaddingWeight= systemd-repart 252
	// accepts.
	MaxWeight = 1000000
	// MaxLabelBytes is the longest Label= systemd-repart 252 accepts, in
	// bytes of UTF-8. (A GPT label holds 36 UTF-16 units, but repart 252
	// checks the length of the expanded UTF-8 string against 36 and ignores
	// longer labels, e.g. 19 two-byte characters.)
	MaxLabelBytes = 36
)

// EncryptedFormat is the file system systemd-repart 252 makes inside an
// encrypted new partition without Format=.
const EncryptedFormat = "ext4"

// Formats returns the Format= values sprout can create. Whether the mkfs
// tool is installed is checked when a plan needs it, not here.
func Formats() []string { return fstype.Names() }

func newDefinition(path string) Definition {
	return Definition{
		File:           filepath.Base(path),
		Path:           path,
		Weight:         DefaultWeight,
		PaddingWeight:  DefaultPaddingWeight,
		SizeMin:        Unset,
		SizeMax:        Unset,
		PaddingMin:     Unset,
		PaddingMax:     Unset,
		NoAuto:         TriUnset,
		ReadOnly:       TriUnset,
		GrowFileSystem: TriUnset,
		Lines:          map[string]string{},
	}
}

// Parse reads the definition file at path and then the drop-ins, in the
// given order (later assignments win), and checks the result. It does not
// look for drop-ins itself; Load does that. No specifier has a value: a
// Label= with one (other than %%) is ignored with a warning.
func Parse(path string, dropIns []string) (Definition, error) {
	return ParseWith(path, dropIns, sdvalue.Specifiers{})
}

// ParseWith is Parse with the values the % specifiers of Label= expand to.
func ParseWith(path string, dropIns []string, sp sdvalue.Specifiers) (Definition, error) {
	return parseFor(path, dropIns, sp, compat.Newest)
}

// parseFor is ParseWith following systemd version compat (0: the newest):
// a key or value added after it is refused.
func parseFor(path string, dropIns []string, sp sdvalue.Specifiers, v compat.Version) (Definition, error) {
	p := newParser(path)
	p.sp = sp
	p.compat = v
	if err := p.file(path); err != nil {
		return Definition{}, err
	}
	for _, d := range dropIns {
		if err := p.file(d); err != nil {
			return Definition{}, err
		}
		p.def.DropIns = append(p.def.DropIns, d)
	}
	if err := p.check(); err != nil {
		return Definition{}, err
	}
	return p.def, nil
}

// parser accumulates one definition over its main file and drop-ins.
type parser struct {
	def  Definition
	locs map[string]loc // where each key was last set
	// header is the first [Partition] line of the main file, for errors
	// about settings that are missing.
	header int
	sp     sdvalue.Specifiers
	// compat is the systemd version followed (--compat=); keys and
	// values added later are refused.
	compat compat.Version
}

func newParser(path string) *parser {
	return &parser{def: newDefinition(path), locs: map[string]loc{}}
}

func (p *parser) file(path string) error {
	data, err := pollfree.ReadFile(path)
	if err != nil {
		return &Error{File: path, Msg: "cannot read definition", Err: err}
	}
	return p.data(path, data)
}

// data applies the settings of one file's contents.
func (p *parser) data(path string, data []byte) error {
	entries, err := parseUnitFile(path, data)
	if err != nil {
		return err
	}
	ignored := false // inside an X-... section
	for _, e := range entries {
		if e.Key == "" { // section header
			switch {
			case e.Section == "Partition":
				ignored = false
				if p.header == 0 && path == p.def.Path {
					p.header = e.Line
				}
			case strings.HasPrefix(e.Section, "X-"):
				// systemd ignores extension sections without a word.
				ignored = true
			default:
				return &Error{File: path, Line: e.Line,
					Msg: fmt.Sprintf("unsupported section %s: repart.d files have only [Partition]", sdvalue.ShowName("[", e.Section, "]"))}
			}
			continue
		}
		if ignored {
			continue
		}
		if err := p.set(path, e.Line, e.Key, e.Value); err != nil {
			return err
		}
	}
	return nil
}

// setting applies one Key=Value to a definition. It returns a short reason
// when the value is invalid.
type setting func(d *Definition, value string) error

func (p *parser) set(path string, line int, key, value string) error {
	spec, ok := keys[key]
	if !ok {
		if strings.HasPrefix(key, "X-") {
			// Extension keys (like X- sections) are reserved for other
			// tools; systemd-repart ignores them without a word, so
			// ignoring them too cannot make our result differ.
			return nil
		}
		why := "not a repart.d setting"
		if v, known := unsupported[key]; known {
			why = fmt.Sprintf("a repart.d setting of systemd %d that sprout does not implement", v)
		}
		return &Error{File: path, Line: line, Key: key,
			Msg: fmt.Sprintf("unsupported key %s in [Partition] (%s)", sdvalue.ShowName("'", key, "'"), why)}
	}
	given := value
	if key == "Label" || key == "VolumeLabel" {
		expanded, err := p.sp.Expand(value)
		var missing *sdvalue.MissingSpecifierError
		if errors.As(err, &missing) {
			// As 252: the line is ignored and an earlier Label= stays.
			p.def.Warnings = append(p.def.Warnings, fmt.Sprintf("%s:%d: ignoring %s=%s: %v", path, line, key, value, err))
			return nil
		}
		if err != nil {
			return &Error{File: path, Line: line, Key: key,
				Msg: fmt.Sprintf("invalid value for %s=: %s: %v", key, sdvalue.Quote(given), err)}
		}
		value = expanded
	}
	l := loc{path, line}
	p.def.at = l.String()
	err := spec.set(&p.def, value)
	p.def.at = ""
	if err != nil {
		if value != given {
			err = fmt.Errorf("expands to %s, %w", sdvalue.Quote(value), err)
		}
		return &Error{File: path, Line: line, Key: key,
			Msg: fmt.Sprintf("invalid value for %s=: %s: %v", key, sdvalue.Quote(given), err)}
	}
	// A valid value of a key or value the version followed does not have
	// (a malformed one is refused as such, above, at any version).
	if v := since(key, value); compat.Version(v) > p.compat.OrDefault() {
		what := key + "="
		if v > keys[key].since {
			what += value // the value is what is newer (Format=empty)
		}
		return &Error{File: path, Line: line, Key: key,
			Msg: fmt.Sprintf("%s needs systemd-repart %d or later, but --compat=%s follows systemd-repart %s", what, v, p.compat.OrDefault(), p.compat.OrDefault())}
	}
	p.locs[key] = l
	p.def.Lines[key] = l.String()
	return nil
}

func setType(d *Definition, v string) error {
	g, ok := parttype.Lookup(v)
	if !ok {
		return fmt.Errorf("not a partition type name known to systemd-repart 252 nor a UUID")
	}
	if g == uuid.Nil {
		// repart 252 treats the all-zero GUID as "Type= not set".
		return fmt.Errorf("the all-zero GUID marks an unused GPT entry")
	}
	d.Type = g
	return nil
}

// setLabel takes the label after its specifiers were expanded (see
// parser.set and sdvalue.Specifiers.Expand).
func setLabel(d *Definition, label string) error {
	if len(label) > MaxLabelBytes {
		return fmt.Errorf("%d bytes long; systemd-repart 252 accepts at most %d bytes of UTF-8 and would ignore it", len(label), MaxLabelBytes)
	}
	d.Label = &label
	return nil
}

// setUUID: empty resets to "derive from the seed", "null" means all-zero.
func setUUID(d *Definition, v string) error {
	switch v {
	case "":
		d.UUID = nil
		return nil
	case "null":
		d.UUID = &uuid.UUID{}
		return nil
	}
	g, ok := parttype.ParseUUID(v)
	if !ok {
		return fmt.Errorf("not a UUID (32 hex digits, optionally with dashes) or \"null\"")
	}
	d.UUID = &g
	return nil
}

func setPriority(d *Definition, v string) error {
	n, err := sdvalue.Signed(v, 32)
	if err != nil {
		return fmt.Errorf("not a 32-bit signed integer (%w)", err)
	}
	d.Priority = int32(n)
	return nil
}

func setWeight(dst *uint32, v string) error {
	n, err := sdvalue.Unsigned(v, 32)
	if err != nil {
		return fmt.Errorf("not an unsigned integer (%w)", err)
	}
	if n > MaxWeight {
		return fmt.Errorf("must be between 0 and %d", MaxWeight)
	}
	*dst = uint32(n)
	return nil
}

func setSize(dst *uint64, v string, round func(uint64) uint64) error {
	n, err := sdvalue.Size(v)
	if err != nil {
		return fmt.Errorf("not a size (%w); use bytes or a number with suffix B, K, M, G, T, P or E (base 1024)", err)
	}
	*dst = round(n)
	return nil
}

// setFormat takes any file system name, as systemd-repart does: on a
// partition that exists it has no effect; a new partition with a format
// sprout cannot make is refused by the planner, naming this line.
// "empty" (258) is Format=empty; "" resets.
func setFormat(d *Definition, v string) error {
	d.Format, d.Empty = "", false
	switch {
	case v == "":
		// 262 refuses it ("not valid") and keeps the earlier value.
		return fmt.Errorf("not a file system name; sprout can create %s (and Format=empty)", strings.Join(Formats(), ", "))
	case v == "empty":
		d.Empty = true
	case v == "." || v == ".." || strings.ContainsAny(v, "/ \t"):
		return fmt.Errorf("not a file system name")
	default:
		d.Format = v
	}
	return nil
}

// FormatKnown reports whether sprout can make the definition's Format=.
func (d *Definition) FormatKnown() bool {
	for _, f := range Formats() {
		if d.Format == f {
			return true
		}
	}
	return false
}

func setFlags(d *Definition, v string) error {
	n, err := sdvalue.Unsigned(v, 64)
	if err != nil {
		return fmt.Errorf("not an unsigned 64-bit integer (%w)", err)
	}
	d.Flags = &n
	return nil
}

// setTristate: empty resets to unset, as systemd does.
func setTristate(dst *Tristate, v string) error {
	if v == "" {
		*dst = TriUnset
		return nil
	}
	b, err := sdvalue.ParseBool(v)
	if err != nil {
		return err
	}
	*dst = TriNo
	if b {
		*dst = TriYes
	}
	return nil
}

func setFactoryReset(d *Definition, v string) error {
	b, err := sdvalue.ParseBool(v)
	if err != nil {
		return err
	}
	d.FactoryReset = b
	return nil
}

// setEncrypt reads Encrypt=: a mode's name (pkg/encryption), "off", or
// as in 252 a boolean (false is off, true is key-file).
func setEncrypt(d *Definition, v string) error {
	if m, ok := encryption.Lookup(v); ok {
		d.Encrypt = m.Mode
		return nil
	}
	if v == "off" {
		d.Encrypt = encryption.Off
		return nil
	}
	b, err := sdvalue.ParseBool(v)
	if err != nil {
		return fmt.Errorf("not an encryption mode (%s)", encryption.Names())
	}
	d.Encrypt = encryption.Off
	if b {
		d.Encrypt = encryption.KeyFile
	}
	return nil
}

// setTPM2PCRs reads TPM2PCRs= (259): the PCRs this partition's TPM2 key
// is bound to, numbers or names (empty: none).
func setTPM2PCRs(d *Definition, v string) error {
	pcrs, err := encryption.ParsePCRs(v, true)
	if err != nil {
		return err
	}
	d.TPM2PCRs = &pcrs
	return nil
}

// setKeyFile reads KeyFile= (259): the file holding this partition's
// key for Encrypt=key-file. Like 262 it is read now, so a missing key
// stops the run before anything is written; empty goes back to
// --key-file= or the empty key. A relative path is refused: 262's manual
// says it is ignored, its binary reads it relative to its working
// directory.
func setKeyFile(d *Definition, v string) error {
	if v == "" {
		d.KeyFile = ""
		return nil
	}
	if !filepath.IsAbs(v) {
		return fmt.Errorf("not an absolute path")
	}
	if _, err := pollfree.ReadFile(v); err != nil {
		return fmt.Errorf("cannot read the key file: %w", err)
	}
	d.KeyFile = v
	return nil
}

// check applies the rules that concern the definition as a whole.
func (p *parser) check() error {
	d := &p.def
	if d.Type == uuid.Nil {
		return &Error{File: d.Path, Line: p.header, Key: "Type",
			Msg: "Type= is not set; every partition definition needs one"}
	}
	d.applyEmpty()
	if d.Encrypt != encryption.Off && d.Format == "" {
		// 252 makes ext4 inside a LUKS volume that has no Format= (observed:
		// Encrypt=key-file alone gives an ext4 with the derived UUID).
		d.Format = EncryptedFormat
	}
	if err := p.checkRange("SizeMinBytes", d.SizeMin, "SizeMaxBytes", d.SizeMax); err != nil {
		return err
	}
	if err := p.checkSubvolumes(); err != nil {
		return err
	}
	if err := p.checkImageKeys(); err != nil {
		return err
	}
	return p.checkRange("PaddingMinBytes", d.PaddingMin, "PaddingMaxBytes", d.PaddingMax)
}

// checkRange refuses min > max, compared after rounding as repart does.
func (p *parser) checkRange(minKey string, min uint64, maxKey string, max uint64) error {
	if min == Unset || max == Unset || min <= max {
		return nil
	}
	l := p.locs[minKey]
	return &Error{File: l.file, Line: l.line, Key: minKey,
		Msg: fmt.Sprintf("%s= (%s after rounding down to 4096) is larger than %s= (%s after rounding up, set at %s)",
			minKey, strconv.FormatUint(min, 10), maxKey, strconv.FormatUint(max, 10), p.locs[maxKey])}
}
