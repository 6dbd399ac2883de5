package bad

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// badCase is testdata/<name>/case.conf; the format is described in
// tests/bad/testdata/README.md.
type badCase struct {
	name        string
	dir         string // absolute path of the case directory
	description string

	// The disk.
	diskSize    int64 // bytes, when hasDisk
	hasDisk     bool
	table       string   // sfdisk script, relative to dir
	tableSector int      // sector size the table is written with
	corrupt     []string // edits applied after the table is written
	device      string   // image, loop, loop-ro, partition, dir, devnull, missing, none
	sector      int      // logical sector size of the loop device
	kernel      bool     // loop devices: add the table's partitions to the kernel (partx)
	mount       int      // loop devices: make ext4 in this partition and mount it read-only
	retable     string   // loop devices: sfdisk script written through the device afterwards, kernel not told

	// The run and what it must give. exit and stderr hold for
	// --compat=252 and for every later version up to the first key of
	// exitFrom/stderrFrom ("exit@254 = 77": from 254 on).
	args         []string // placeholders {device}, {defs}, {dir}
	exit         int
	exitFrom     map[int]int
	stderr       []string // each: fragments separated by " || ", one must appear
	stderrFrom   map[int][]string
	unchanged    bool
	unchangedSet bool
	after        []string // checks after a successful run: valid-gpt, rerun-no-changes, lba0-unchanged
	maxRSS       int64    // bytes
	hide         []string // programs left out of $PATH for both tools
	grow         int64    // bytes the image is grown to after the table is written

	// The oracle.
	repart     string         // systemd-repart 252's exit code on the same input, or "skip: why"
	repartFrom map[int]string // the exit code of later versions where it changed ("repart@257 = 1")
	differs    string         // why sprout's exit code differs from systemd-repart's, when it does
	// Why sprout refuses for another class of reason than systemd-repart
	// (harness.RefusalClass), when both refuse and the classes differ.
	reasonDiffers string
}

// at returns the value of a setting under version v: the one of the
// highest version key at most v, or def.
func at[T any](def T, from map[int]T, v int) T {
	best := 0
	for k, x := range from {
		if k <= v && k > best {
			def, best = x, k
		}
	}
	return def
}

func (c *badCase) exitAt(v int) int        { return at(c.exit, c.exitFrom, v) }
func (c *badCase) stderrAt(v int) []string { return at(c.stderr, c.stderrFrom, v) }
func (c *badCase) repartAt(v int) string   { return at(c.repart, c.repartFrom, v) }
func (c *badCase) unchangedAt(v int) bool  { return c.unchanged || c.exitAt(v) != 0 && !c.unchangedSet }

// devices that need root (loop devices).
var rootDevices = map[string]bool{"loop": true, "loop-ro": true, "partition": true}

const defaultMaxRSS = 64 << 20

func loadCase(dir string) (*badCase, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	c := &badCase{
		name: filepath.Base(dir), dir: abs,
		tableSector: 512, sector: 512, device: "image", maxRSS: defaultMaxRSS,
	}
	f, err := os.Open(filepath.Join(dir, "case.conf"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	seen := map[string]bool{}
	var desc []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			if len(seen) == 0 {
				desc = append(desc, strings.TrimSpace(strings.TrimPrefix(line, "#")))
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s/case.conf:%d: expected key = value", dir, n)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if err := c.set(key, value, seen); err != nil {
			return nil, fmt.Errorf("%s/case.conf:%d: %s: %w", dir, n, key, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	c.description = strings.Join(desc, " ")
	for _, k := range []string{"exit", "repart252"} {
		if !seen[k] {
			return nil, fmt.Errorf("%s/case.conf: %s is required", dir, k)
		}
	}
	c.unchangedSet = seen["unchanged"]
	if !c.unchangedSet {
		c.unchanged = c.exit != 0
	}
	if c.exit != 0 && len(c.stderr) == 0 {
		return nil, fmt.Errorf("%s/case.conf: a refusal needs at least one stderr fragment", dir)
	}
	for v, e := range c.exitFrom {
		if e != 0 && len(c.stderrAt(v)) == 0 {
			return nil, fmt.Errorf("%s/case.conf: exit@%d: a refusal needs at least one stderr fragment", dir, v)
		}
	}
	if !seen["args"] {
		c.args = []string{"--dry-run=no", "--definitions={defs}", "--seed=" + harness.Test58Seed, "{device}"}
	}
	return c, nil
}

func (c *badCase) set(key, value string, seen map[string]bool) error {
	if base, ver, ok := strings.Cut(key, "@"); ok {
		return c.setFrom(base, ver, value, seen)
	}
	repeatable := key == "stderr" || key == "corrupt" || key == "after" || key == "hide"
	if seen[key] && !repeatable {
		return fmt.Errorf("given twice")
	}
	seen[key] = true
	var err error
	switch key {
	case "disk":
		c.hasDisk = true
		c.diskSize, err = harness.ParseSize(value)
	case "table":
		c.table = value
	case "table-sector":
		c.tableSector, err = strconv.Atoi(value)
	case "corrupt":
		c.corrupt = append(c.corrupt, value)
	case "device":
		switch value {
		case "image", "loop", "loop-ro", "partition", "dir", "devnull", "missing", "none":
			c.device = value
		default:
			err = fmt.Errorf("unknown device kind %q", value)
		}
	case "sector":
		c.sector, err = strconv.Atoi(value)
	case "kernel":
		c.kernel = value == "yes"
	case "mount":
		c.mount, err = strconv.Atoi(value)
	case "retable":
		c.retable = value
	case "args":
		c.args = strings.Fields(value)
	case "exit":
		c.exit, err = strconv.Atoi(value)
	case "stderr":
		c.stderr = append(c.stderr, value)
	case "unchanged":
		c.unchanged = value == "yes"
		if value != "yes" && value != "no" {
			err = fmt.Errorf("want yes or no")
		}
	case "after":
		if value != "valid-gpt" && value != "rerun-no-changes" && value != "lba0-unchanged" {
			err = fmt.Errorf("unknown check %q", value)
		}
		c.after = append(c.after, value)
	case "grow":
		c.grow, err = harness.ParseSize(value)
	case "hide":
		if strings.ContainsAny(value, "/ ") || value == "" {
			err = fmt.Errorf("want a program name")
		}
		c.hide = append(c.hide, value)
	case "max-rss":
		c.maxRSS, err = harness.ParseSize(value)
	case "repart252":
		c.repart = value
		if !strings.HasPrefix(value, "skip:") {
			_, err = strconv.Atoi(value)
		}
	case "differs":
		c.differs = value
	case "reason-differs":
		c.reasonDiffers = value
	default:
		err = fmt.Errorf("unknown key")
	}
	return err
}

// setFrom reads "exit@254", "stderr@254" (repeatable) and "repart@257":
// the value from that systemd version on.
func (c *badCase) setFrom(base, ver, value string, seen map[string]bool) error {
	v, err := strconv.Atoi(ver)
	if err != nil || v <= 252 {
		return fmt.Errorf("want a systemd version after 252 after @")
	}
	key := base + "@" + ver
	if seen[key] && base != "stderr" {
		return fmt.Errorf("given twice")
	}
	seen[key] = true
	switch base {
	case "exit":
		if c.exitFrom == nil {
			c.exitFrom = map[int]int{}
		}
		c.exitFrom[v], err = strconv.Atoi(value)
	case "stderr":
		if c.stderrFrom == nil {
			c.stderrFrom = map[int][]string{}
		}
		c.stderrFrom[v] = append(c.stderrFrom[v], value)
	case "repart":
		if c.repartFrom == nil {
			c.repartFrom = map[int]string{}
		}
		c.repartFrom[v] = value
		if !strings.HasPrefix(value, "skip:") {
			_, err = strconv.Atoi(value)
		}
	default:
		err = fmt.Errorf("only exit, stderr and repart take @VERSION")
	}
	return err
}

func (c *badCase) needsRoot() bool { return rootDevices[c.device] || c.tableSector != 512 }

// pinned is the version a case's own --compat= gives (a case about a
// flag or key of a later systemd), or 0.
func (c *badCase) pinned() int {
	for _, a := range c.args {
		if v, ok := strings.CutPrefix(a, "--compat="); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// argv returns the command line with the placeholders filled in; extra
// (sprout's --compat=) goes first. For systemd-repart (oracle) the case's
// own --compat= is left out.
func (c *badCase) argv(bin, device string, oracle bool, extra ...string) []string {
	out := append([]string{bin}, extra...)
	for _, a := range c.args {
		if oracle && strings.HasPrefix(a, "--compat=") {
			continue
		}
		a = strings.ReplaceAll(a, "{device}", device)
		a = strings.ReplaceAll(a, "{defs}", filepath.Join(c.dir, "defs"))
		a = strings.ReplaceAll(a, "{dir}", c.dir)
		out = append(out, a)
	}
	return out
}

// env is the extra environment of a case's runs: with programs to hide, a
// $PATH of one directory (under dir) linking every program of the real
// $PATH but those.
func (c *badCase) env(dir string) ([]string, error) {
	if len(c.hide) == 0 {
		return nil, nil
	}
	bin := filepath.Join(dir, "path")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return nil, err
	}
	hidden := map[string]bool{}
	for _, h := range c.hide {
		hidden[h] = true
	}
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			link := filepath.Join(bin, e.Name())
			if hidden[e.Name()] {
				continue
			}
			if _, err := os.Lstat(link); err == nil {
				continue // an earlier $PATH entry wins, as in a lookup
			}
			if err := os.Symlink(filepath.Join(d, e.Name()), link); err != nil {
				return nil, err
			}
		}
	}
	return []string{"PATH=" + bin}, nil
}
