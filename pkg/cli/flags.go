package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/fstab"
	"github.com/sprout-initrd/sprout/pkg/luks"
	"github.com/sprout-initrd/sprout/pkg/parttype"
	"github.com/sprout-initrd/sprout/pkg/plan"
	"github.com/sprout-initrd/sprout/pkg/sdvalue"
)

// config is the parsed command line.
type config struct {
	dryRun      bool
	empty       plan.EmptyMode
	definitions []string
	root        string
	seed        string
	size        string
	json        string
	discard     bool
	// discardBudget bounds the time all discards of a run take (0: none).
	discardBudget time.Duration
	pretty        *bool
	legend        bool
	help          bool
	version       bool
	device        string
	waitForDisk   time.Duration
	// factoryReset is --factory-reset= (nil: not given).
	factoryReset    *bool
	canFactoryReset bool
	// keyFile, tpm2Device and tpm2PCRs are the Encrypt= settings; the
	// TPM2 policy flags are nil when not given (luks.Request).
	keyFile           string
	tpm2Device        string
	tpm2PCRs          *string
	tpm2PublicKey     *string
	tpm2PublicKeyPCRs *string
	tpm2PCRLock       *string
	// compat is --compat=: the systemd-repart version whose behaviour
	// sprout follows.
	compat compat.Version
	// selection is --include-partitions=, --exclude-partitions= and the
	// --defer-partitions* flags.
	selection plan.Selection
	// generateFstab and generateCrypttab are the files to write (under
	// --root), appendFstab what to do with an existing fstab.
	generateFstab, generateCrypttab string
	appendFstab                     fstab.Append
	// since records, for each flag given, the systemd version that added
	// it (flagSince), to refuse it under an older --compat=.
	since map[string]int
	// initrdNeeds is --initrd-needs: "" (not given), "definitions" or
	// "all".
	initrdNeeds string
}

// flagSince is the systemd version that added each flag sprout takes
// after 252 (systemd-repart(8)'s "Added in version").
var flagSince = map[string]int{
	"include-partitions": 253, "exclude-partitions": 253, "defer-partitions": 253,
	"generate-fstab": 256, "generate-crypttab": 256,
	"append-fstab":           258,
	"defer-partitions-empty": 259, "defer-partitions-factory-reset": 259,
}

// checkCompat refuses a flag that the systemd version followed did not
// have.
func (c *config) checkCompat() error {
	for name, v := range c.since {
		if compat.Version(v) > c.compat.OrDefault() {
			return fmt.Errorf("--%s= needs systemd-repart %d or later, but --compat=%s follows systemd-repart %s", name, v, c.compat.OrDefault(), c.compat.OrDefault())
		}
	}
	return nil
}

// partitionTypes reads a comma-separated list of partition type names or
// GUIDs, as --include-partitions= and friends take it.
func partitionTypes(v string) ([]uuid.UUID, error) {
	var out []uuid.UUID
	for _, item := range strings.Split(v, ",") {
		g, ok := parttype.Lookup(item)
		if !ok || item == "" {
			return nil, fmt.Errorf("%q is not a partition type name or GUID", item)
		}
		out = append(out, g)
	}
	return out, nil
}

func parse(args []string) (*config, error) {
	c := &config{dryRun: true, empty: plan.EmptyRefuse, discard: true, discardBudget: plan.DefaultDiscardBudget, json: "off", legend: true,
		tpm2Device: "auto", compat: compat.Default, appendFstab: fstab.AppendNo, since: map[string]int{}}
	types := func(name string, dst *[]uuid.UUID) option {
		return option{name: name, hasValue: true, set: func(v string) error {
			ts, err := partitionTypes(v)
			*dst = append(*dst, ts...)
			return err
		}}
	}
	boolOpt := func(name string, dst *bool) option {
		return option{name: name, hasValue: true, set: func(v string) (err error) {
			*dst, err = sdvalue.ParseBool(v)
			return err
		}}
	}
	dryRunSet := false
	opts := []option{
		{name: "dry-run", hasValue: true, set: func(v string) (err error) {
			dryRunSet = true
			c.dryRun, err = sdvalue.ParseBool(v)
			return err
		}},
		{name: "empty", hasValue: true, set: func(v string) error {
			switch m := plan.EmptyMode(v); m {
			case plan.EmptyRefuse, plan.EmptyAllow, plan.EmptyRequire, plan.EmptyForce, plan.EmptyCreate:
				c.empty = m
				return nil
			}
			return errors.New("expected refuse, allow, require, force or create")
		}},
		{name: "definitions", hasValue: true, set: func(v string) error {
			abs, err := filepath.Abs(v)
			c.definitions = append(c.definitions, abs)
			return err
		}},
		{name: "factory-reset", hasValue: true, set: func(v string) error {
			b, err := sdvalue.ParseBool(v)
			c.factoryReset = &b
			return err
		}},
		{name: "can-factory-reset", set: func(string) error {
			c.canFactoryReset = true
			return nil
		}},
		{name: "root", hasValue: true, set: func(v string) (err error) {
			c.root, err = filepath.Abs(v)
			return err
		}},
		{name: "seed", hasValue: true, set: func(v string) error {
			if v != "random" {
				if _, err := uuid.Parse(v); err != nil {
					return errors.New("expected a UUID or \"random\"")
				}
			}
			c.seed = v
			return nil
		}},
		{name: "size", hasValue: true, set: func(v string) error {
			if v != "auto" {
				if _, err := sdvalue.ParseSize(v); err != nil {
					return err
				}
			}
			c.size = v
			return nil
		}},
		{name: "json", hasValue: true, set: func(v string) error {
			switch v {
			case "pretty", "short", "off":
				c.json = v
				return nil
			}
			return errors.New("expected pretty, short or off")
		}},
		boolOpt("discard", &c.discard),
		{name: "discard-budget", hasValue: true, set: func(v string) (err error) {
			if v == "infinity" {
				c.discardBudget = 0
				return nil
			}
			c.discardBudget, err = time.ParseDuration(v)
			if err == nil && c.discardBudget <= 0 {
				err = errors.New("must be positive (or infinity; --discard=no discards nothing)")
			}
			return err
		}},
		{name: "key-file", hasValue: true, set: func(v string) (err error) {
			c.keyFile, err = filepath.Abs(v)
			if err == nil {
				// Read now, as 252 does: an unreadable key stops the run
				// before anything is written.
				err = luks.CheckKeyFile(c.keyFile)
			}
			return err
		}},
		{name: "tpm2-device", hasValue: true, set: func(v string) error {
			if v == "" {
				v = "auto"
			}
			if v == "list" {
				return errors.New("listing TPM2 devices is not supported; give auto or a device path")
			}
			c.tpm2Device = v
			return nil
		}},
		{name: "tpm2-pcrs", hasValue: true, set: pcrsOpt(&c.tpm2PCRs)},
		{name: "tpm2-public-key", hasValue: true, set: func(v string) (err error) {
			if v != "" {
				v, err = filepath.Abs(v)
			}
			c.tpm2PublicKey = &v
			return err
		}},
		{name: "tpm2-public-key-pcrs", hasValue: true, set: pcrsOpt(&c.tpm2PublicKeyPCRs)},
		{name: "tpm2-pcrlock", hasValue: true, set: func(v string) (err error) {
			if v != "" {
				v, err = filepath.Abs(v)
			}
			c.tpm2PCRLock = &v
			return err
		}},
		{name: "pretty", hasValue: true, set: func(v string) error {
			b, err := sdvalue.ParseBool(v)
			c.pretty = &b
			return err
		}},
		{name: "wait-for-disk", hasValue: true, set: func(v string) (err error) {
			c.waitForDisk, err = time.ParseDuration(v)
			if err == nil && c.waitForDisk < 0 {
				err = errors.New("must not be negative")
			}
			return err
		}},
		types("include-partitions", &c.selection.Include),
		types("exclude-partitions", &c.selection.Exclude),
		types("defer-partitions", &c.selection.Defer),
		boolOpt("defer-partitions-empty", &c.selection.DeferEmpty),
		boolOpt("defer-partitions-factory-reset", &c.selection.DeferFactoryReset),
		{name: "generate-fstab", hasValue: true, set: func(v string) error { c.generateFstab = v; return nil }},
		{name: "generate-crypttab", hasValue: true, set: func(v string) error { c.generateCrypttab = v; return nil }},
		{name: "append-fstab", hasValue: true, set: func(v string) (err error) {
			c.appendFstab, err = fstab.ParseAppend(v)
			return err
		}},
		{name: "compat", hasValue: true, set: func(v string) (err error) {
			c.compat, err = compat.Parse(v)
			return err
		}},
		{name: "initrd-needs", optionalValue: true, set: func(v string) error {
			switch v {
			case "", "definitions":
				c.initrdNeeds = "definitions"
			case "all":
				c.initrdNeeds = "all"
			default:
				return errors.New("expected definitions or all")
			}
			return nil
		}},
		{name: "no-legend", set: func(string) error { c.legend = false; return nil }},
		{name: "no-pager", set: func(string) error { return nil }},
		{name: "help", set: func(string) error { c.help = true; return nil }},
		{name: "version", set: func(string) error { c.version = true; return nil }},
	}
	pos, err := parseArgs(args, opts, func(name string) {
		if v, ok := flagSince[name]; ok {
			c.since[name] = v
		}
	})
	if err != nil {
		return nil, err
	}
	if err := c.checkEncryptionFlags(); err != nil {
		return nil, err
	}
	if c.help || c.version {
		return c, nil
	}
	if c.initrdNeeds != "" && len(pos) > 0 {
		return nil, errors.New("--initrd-needs reads definitions only; it takes no device")
	}
	switch len(pos) {
	case 0:
	case 1:
		c.device = pos[0]
	default:
		return nil, fmt.Errorf("expected at most one device, got %d arguments", len(pos))
	}
	if c.empty == plan.EmptyCreate && !dryRunSet {
		c.dryRun = false // creating an image is the point of --empty=create
	}
	if c.canFactoryReset {
		c.dryRun = true // it only asks, as in 252
	}
	if c.device == "" && c.empty != plan.EmptyRefuse && c.empty != plan.EmptyAllow {
		return nil, fmt.Errorf("--empty=%s needs a device argument", c.empty)
	}
	if c.device != "" && c.waitForDisk > 0 {
		return nil, errors.New("--wait-for-disk= waits for the disk sprout finds; it cannot be combined with a device argument")
	}
	if c.empty == plan.EmptyCreate && c.size == "" {
		return nil, errors.New("--empty=create needs --size=")
	}
	if len(c.selection.Include) > 0 && len(c.selection.Exclude) > 0 {
		return nil, errors.New("--include-partitions= and --exclude-partitions= cannot be combined")
	}
	if err := c.checkCompat(); err != nil {
		return nil, err
	}
	return c, nil
}
