package harness

import (
	"regexp"
	"strings"
)

// RefusalClass is why a tool refused, in words both tools' messages map
// to: "refused by both" counts only when the reasons are of one class (a
// systemd-repart that refuses because it cannot start, or for a reason
// unrelated to the case, must not read as agreement).
type RefusalClass string

const (
	RefusedDefinition  RefusalClass = "definition"  // a repart.d file is invalid (syntax, value, missing or contradictory keys)
	RefusedOption      RefusalClass = "option"      // the command line is invalid
	RefusedFit         RefusalClass = "fit"         // the partitions do not fit the disk
	RefusedTable       RefusalClass = "table"       // the disk's partition table: none, foreign, damaged, full
	RefusedDevice      RefusalClass = "device"      // the target cannot be opened, written, resized, or is in use
	RefusedTool        RefusalClass = "tool"        // a program it needs is missing or failed
	RefusedEncryption  RefusalClass = "encryption"  // key file, TPM2
	RefusedOutput      RefusalClass = "output"      // a file to generate (fstab, crypttab) cannot be written
	RefusedUnsupported RefusalClass = "unsupported" // the tool does not do what is asked
	RefusedUnknown     RefusalClass = ""            // a message neither table knows: a failure, never a match
)

type classRule struct {
	class RefusalClass
	re    *regexp.Regexp
}

func rules(pairs ...any) []classRule {
	var out []classRule
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, classRule{pairs[i].(RefusalClass), regexp.MustCompile(pairs[i+1].(string))})
	}
	return out
}

// The first matching rule wins, so narrower rules come first.
var (
	sproutRules = rules(
		RefusedUnsupported, `sprout (cannot|does not)|would fill the new partition|names a subvolume a new, empty file system`,
		RefusedDefinition, `\.conf(:\d+)?: `,
		RefusedEncryption, `--key-file=|--tpm2-|Encrypt=tpm2 needs|LUKS2 volume: |cryptsetup `,
		RefusedFit, `can't fit requested partitions|is too small for|too small`,
		RefusedTable, `corrupt GPT|partition table|no free slot in the partition entry array|disk GUID is all zeros`,
		RefusedTool, `is needed to make .* but was not found`,
		RefusedOutput, `(fstab|crypttab) exists|cannot write (fstab|crypttab)`,
		RefusedDevice, `^open |^create .*: file exists|is in use|read-only|is a block device|nothing was written`,
		RefusedOption, `^--|^unknown option|^option --|^expected at most one device`,
	)
	repartRules = rules(
		RefusedUnsupported, `not supported from automatic source block device discovery`,
		RefusedDefinition, `\.conf(:\d+)?: |Failed to open .*\.conf`,
		RefusedEncryption, `key file|PCR|[Ee]ncrypt|TPM2|tpm2`,
		RefusedFit, `Can't fit requested partitions|Automatically determined minimal disk image size`,
		RefusedTable, `GPT disk label|already has a disk label|Failed to set GPT disk label|Partition end beyond disk end|Failed to write partition table|Failed to add partition`,
		RefusedTool, `mkfs binary for .* not available|' ?failed with exit status|\) failed with exit status`,
		RefusedOutput, `temporary file (for|to) .*(fstab|crypttab)`,
		RefusedDevice, `Failed to open (file or determine backing device|device)|^Failed to create '|Cannot resize block device|Device or resource busy|Failed to discard data`,
		RefusedOption, `^(/usr/bin/)?systemd-repart: (unrecognized option|option .* requires an argument)|^Failed to parse (--|boolean argument to|seed)|^Unknown argument to --|^Expected at most one argument|^If --empty=create is specified|is not a valid partition type identifier|^Combination of --|^No --generate-fstab= specified`,
	)
)

// SproutRefusal classifies sprout's one "sprout: …" error line (stderr
// of a refusing run): the last line so prefixed.
func SproutRefusal(stderr string) (RefusalClass, string) {
	line := ""
	for _, l := range strings.Split(stderr, "\n") {
		if rest, ok := strings.CutPrefix(l, "sprout: "); ok {
			line = rest
		}
	}
	return classify(sproutRules, stripDevice(line)), line
}

// SproutErrorClass classifies an error of sprout's library (the planner's
// refusal in the golden tests): the same rules as its error line.
func SproutErrorClass(err error) RefusalClass {
	return classify(sproutRules, stripDevice(err.Error()))
}

// RepartRefusal classifies systemd-repart's refusal: its last non-empty
// stderr line (it logs warnings first and the reason it gives up last).
func RepartRefusal(stderr string) (RefusalClass, string) {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	line := strings.TrimSpace(lines[len(lines)-1])
	c := classify(repartRules, line)
	if c == RefusedTool && mkfsTooSmall.MatchString(stderr) {
		// mkfs gave up because the partition is below its minimum:
		// the class sprout's check before the first write has.
		c = RefusedFit
	}
	return c, line
}

// mkfsTooSmall is what mkswap and mkfs.xfs, mkfs.btrfs, mkfs.vfat say
// before they give up on a partition below their minimum size.
var mkfsTooSmall = regexp.MustCompile(`swap area needs to be at least|must be larger than|is too small|too small for|Not enough clusters`)

// stripDevice drops the "DEVICE: " sprout puts before a plan's refusal, so
// that a device path is not read as the reason.
var devicePrefix = regexp.MustCompile(`^(/dev/\S+|/\S+\.img): `)

func stripDevice(line string) string { return devicePrefix.ReplaceAllString(line, "") }

func classify(rs []classRule, line string) RefusalClass {
	if line == "" {
		return RefusedUnknown
	}
	for _, r := range rs {
		if r.re.MatchString(line) {
			return r.class
		}
	}
	return RefusedUnknown
}
