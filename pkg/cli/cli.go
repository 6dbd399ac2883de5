// Package cli is sprout's command line: systemd-repart's flags, exit codes
// and output, wired to the planner and the writer.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/apply"
	"github.com/sprout-initrd/sprout/pkg/discover"
	"github.com/sprout-initrd/sprout/pkg/disk"
	"github.com/sprout-initrd/sprout/pkg/fstype"
	"github.com/sprout-initrd/sprout/pkg/gpt"
	"github.com/sprout-initrd/sprout/pkg/mkfs"
	"github.com/sprout-initrd/sprout/pkg/plainfile"
	"github.com/sprout-initrd/sprout/pkg/plan"
	"github.com/sprout-initrd/sprout/pkg/report"
	"github.com/sprout-initrd/sprout/pkg/spec"
)

// Exit codes, as systemd-repart 252 uses them.
const (
	ExitOK      = 0
	ExitFailure = 1
	// ExitNoLabel: the disk has no (or the wrong kind of) partition
	// table for the --empty= mode.
	ExitNoLabel = 77
)

// Version is set at build time.
var Version = "dev"

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
	pretty      *bool
	legend      bool
	help        bool
	version     bool
	device      string
	waitForDisk time.Duration
}

// Env is what a run needs from its surroundings.
type Env struct {
	Stdout, Stderr io.Writer
}

// Main runs sprout with args (without the program name) and returns the
// exit code.
func Main(ctx context.Context, args []string, env Env) int {
	cfg, err := parse(args)
	if err != nil {
		fmt.Fprintf(env.Stderr, "sprout: %v\n", err)
		return ExitFailure
	}
	switch {
	case cfg.help:
		fmt.Fprint(env.Stdout, usage)
		return ExitOK
	case cfg.version:
		fmt.Fprintf(env.Stdout, "sprout %s (repart.d compatible with systemd-repart 252)\n", Version)
		return ExitOK
	}
	r := &run{cfg: cfg, env: env, log: newLogger(env.Stderr)}
	code, err := r.main(ctx)
	if err != nil {
		r.log.errorf("sprout: %v", err)
		return exitCode(err)
	}
	return code
}

// exitCode is systemd-repart 252's exit code for a failed run.
func exitCode(err error) int {
	var le *plan.LabelError
	if errors.As(err, &le) {
		return ExitNoLabel
	}
	return ExitFailure
}

func parse(args []string) (*config, error) {
	c := &config{dryRun: true, empty: plan.EmptyRefuse, discard: true, json: "off", legend: true}
	boolOpt := func(name string, dst *bool) option {
		return option{name: name, hasValue: true, set: func(v string) (err error) {
			*dst, err = parseBool(v)
			return err
		}}
	}
	dryRunSet := false
	opts := []option{
		{name: "dry-run", hasValue: true, set: func(v string) (err error) {
			dryRunSet = true
			c.dryRun, err = parseBool(v)
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
				if _, err := spec.ParseSize(v); err != nil {
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
		{name: "pretty", hasValue: true, set: func(v string) error {
			b, err := parseBool(v)
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
		{name: "no-legend", set: func(string) error { c.legend = false; return nil }},
		{name: "no-pager", set: func(string) error { return nil }},
		{name: "help", set: func(string) error { c.help = true; return nil }},
		{name: "version", set: func(string) error { c.version = true; return nil }},
	}
	pos, err := parseArgs(args, opts)
	if err != nil {
		return nil, err
	}
	if c.help || c.version {
		return c, nil
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
	if c.device == "" && c.empty != plan.EmptyRefuse && c.empty != plan.EmptyAllow {
		return nil, fmt.Errorf("--empty=%s needs a device argument", c.empty)
	}
	if c.device != "" && c.waitForDisk > 0 {
		return nil, errors.New("--wait-for-disk= waits for the disk sprout finds; it cannot be combined with a device argument")
	}
	if c.empty == plan.EmptyCreate && c.size == "" {
		return nil, errors.New("--empty=create needs --size=")
	}
	return c, nil
}

// run holds one invocation's state.
type run struct {
	cfg *config
	env Env
	log *logger
}

func (r *run) logf(format string, args ...any) { r.log.infof(format, args...) }

func (r *run) main(ctx context.Context) (int, error) {
	for _, d := range r.cfg.definitions {
		// Like systemd-repart a missing directory is no error, but a typo
		// here silently disables the first-boot growth, so say it.
		if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) {
			r.logf("Warning: the definitions directory %s does not exist.", d)
		}
	}
	defs, err := spec.Load(spec.Options{Root: r.cfg.root, Dirs: r.cfg.definitions})
	if err != nil {
		return 0, err
	}
	if len(defs) == 0 && r.cfg.empty == plan.EmptyRefuse {
		r.logf("No partition definitions found, nothing to do.")
		return ExitOK, nil
	}
	if r.cfg.device == "" {
		dev, err := r.findDisk(discover.System(), discover.WaitOptions{Timeout: r.cfg.waitForDisk})
		if err != nil {
			return 0, err
		}
		r.cfg.device = dev
	}
	seed, err := r.seed()
	if err != nil {
		return 0, err
	}
	opts := plan.Options{Empty: r.cfg.empty, Seed: seed, Formats: probeFormats(defs)}

	if r.cfg.empty == plan.EmptyCreate {
		if err := createImage(r.cfg.device, r.cfg.dryRun); err != nil {
			return 0, err
		}
	}
	lock, err := disk.Open(r.cfg.device, disk.OpenOptions{Lock: true, Exclusive: !r.cfg.dryRun})
	if err != nil {
		return 0, err
	}
	r.log.device = lock.Path()
	defer func() { lock.Close() }()

	snap, err := snapshot(lock)
	if err != nil {
		if !errors.Is(err, gpt.ErrCorrupt) || (r.cfg.empty != plan.EmptyForce && r.cfg.empty != plan.EmptyCreate) {
			return 0, err
		}
		// --empty=force replaces whatever table is there, a damaged one too.
		r.logf("Replacing the damaged partition table (--empty=%s): %v", r.cfg.empty, err)
		snap.Label, snap.OtherLabel = plan.LabelOther, "damaged GPT"
	}
	if r.cfg.size != "" {
		if err := r.applySize(&lock, &snap, defs); err != nil {
			return 0, err
		}
	}

	// The planner refuses what cannot run (a missing mkfs, a partition too
	// small for its file system) in a dry run and a real run alike.
	p, err := plan.Make(defs, snap, opts)
	if err != nil {
		// Name the disk: the refusal is about it, not about a definition.
		return 0, fmt.Errorf("%s: %w", lock.Path(), err)
	}
	for _, n := range p.Notices {
		r.logf("%s", n)
	}
	node := func(n int) string { return disk.PartitionNode(lock.Path(), n) }
	rows := report.Rows(p, node)
	if r.cfg.json == "off" && (r.cfg.pretty == nil || *r.cfg.pretty) {
		if err := report.Table(r.env.Stdout, rows, r.cfg.legend); err != nil {
			return 0, err
		}
	}

	switch {
	case !p.Changed():
		r.logf("No changes.")
		if !r.cfg.dryRun {
			if err := r.catchUpKernel(ctx, lock, p); err != nil {
				return 0, err
			}
		}
	case r.cfg.dryRun:
		r.logf("Planned steps:")
		if err := report.Steps(r.env.Stderr, p); err != nil {
			return 0, err
		}
		r.logf("Dry run: nothing was written. Re-run with --dry-run=no to apply.")
	default:
		if err := r.apply(ctx, lock, p); err != nil {
			return 0, err
		}
		r.log.partitions(p, node)
		r.logf("All done.")
	}
	if r.cfg.json != "off" {
		if err := report.JSON(r.env.Stdout, rows, r.cfg.json == "pretty"); err != nil {
			return 0, err
		}
	}
	return ExitOK, nil
}

// apply writes through a second, writable handle while the read-only one
// keeps the exclusive lock, so udev does not re-read the table when the
// writable handle is closed.
func (r *run) apply(ctx context.Context, lock disk.Device, p *plan.Plan) error {
	// SIGINT and SIGTERM stop a run cleanly only from here on. Before,
	// nothing has been written and their default action is safe; and a
	// no-op run is spared the thread that signal delivery needs.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	w, err := disk.Open(lock.Path(), disk.OpenOptions{Write: true})
	if err != nil {
		return err
	}
	defer w.Close()
	r.logf("Applying changes to %s.", lock.Path())
	return apply.Run(ctx, w, p, apply.Options{
		Discard: r.cfg.discard,
		Log:     lockedLog(r.logf), // formatting logs from several goroutines
		Release: func() error { return errors.Join(w.Close(), lock.Close()) },
	})
}

// catchUpKernel brings the kernel in line with a table already on disk
// (a run interrupted before it told the kernel) and waits for the links of
// the partitions it added, as a run that writes does.
func (r *run) catchUpKernel(ctx context.Context, lock disk.Device, p *plan.Plan) error {
	added, err := apply.CatchUpKernel(lock, p.New, r.logf)
	if err != nil {
		return fmt.Errorf("%s: the partition table is on disk, but the kernel could not be told about its partitions: %w", lock.Path(), err)
	}
	if len(added) == 0 {
		return nil
	}
	var links []string
	for _, row := range p.Partitions {
		if slices.Contains(added, row.Index) {
			links = append(links, row.UdevLinks()...)
		}
	}
	r.logf("Waiting for the new partitions' devices (udev links when udev runs).")
	return disk.WaitForUdev(ctx, lock, links, 30*time.Second)
}

// lockedLog serializes calls to log.
func lockedLog(log func(string, ...any)) func(string, ...any) {
	var mu sync.Mutex
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		log(format, args...)
	}
}

// probeFormats looks up the mkfs programs the definitions need, so the
// planner can refuse a run that would fail in mkfs halfway.
func probeFormats(defs []spec.Definition) fstype.Capabilities {
	var formats []string
	for _, d := range defs {
		if d.Format != "" {
			formats = append(formats, d.Format)
		}
	}
	return mkfs.Capabilities(formats)
}

// findDisk names the disk when the command line does not: from the kernel
// command line, the boot loader or the mounted root (pkg/discover). It
// never guesses; every method tried is logged. With --wait-for-disk it
// waits for the disk that the deciding method names to appear.
func (r *run) findDisk(env discover.Env, wait discover.WaitOptions) (string, error) {
	wait.Waiting = func(why string) {
		r.logf("Waiting up to %s for the disk: %s", wait.Timeout, why)
	}
	dev, tried, waited, err := discover.Wait(env, wait)
	for _, t := range tried {
		r.logf("Looking for the disk: %s", t)
	}
	if err != nil {
		return "", fmt.Errorf("no device given and none found (pass the whole disk, or sprout.device= on the kernel command line): %w", err)
	}
	if waited > 0 {
		r.logf("Using %s (found after %s).", dev, waited.Round(time.Millisecond))
	} else {
		r.logf("Using %s.", dev)
	}
	return dev, nil
}

// snapshot reads what the planner needs from the disk.
func snapshot(dev disk.Device) (plan.Snapshot, error) {
	snap := plan.Snapshot{Size: uint64(dev.Size()), SectorSize: dev.SectorSize()}
	t, err := gpt.Read(dev, dev.Size(), dev.SectorSize())
	switch {
	case err == nil:
		snap.Label, snap.Table = plan.LabelGPT, t
	case errors.Is(err, gpt.ErrNoLabel):
		snap.Label = plan.LabelNone
	case errors.Is(err, gpt.ErrOtherLabel):
		snap.Label, snap.OtherLabel = plan.LabelOther, "DOS/MBR"
	default:
		return snap, fmt.Errorf("%s: %w", dev.Path(), err)
	}
	return snap, nil
}

// seed returns the UUID seed: --seed, else <root>/etc/machine-id, else a
// random one (then UUIDs differ from run to run, which is said).
func (r *run) seed() (uuid.UUID, error) {
	switch r.cfg.seed {
	case "random":
		return uuid.New(), nil
	case "":
	default:
		return uuid.Parse(r.cfg.seed)
	}
	path := filepath.Join(r.cfg.root, "/etc/machine-id")
	b, err := plainfile.ReadFile(path)
	id := strings.TrimSpace(string(b))
	switch {
	case errors.Is(err, os.ErrNotExist), err == nil && (id == "" || id == "uninitialized"):
		r.logf("No machine ID set, using randomized partition UUIDs.")
		return uuid.New(), nil
	case err != nil:
		return uuid.Nil, fmt.Errorf("read machine ID: %w", err)
	}
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 32 {
		return uuid.Nil, fmt.Errorf("%s: not a machine ID: %q", path, id)
	}
	return u, nil
}

// createImage makes the new image file for --empty=create; like
// systemd-repart it refuses to reuse an existing file.
func createImage(path string, dryRun bool) error {
	if dryRun {
		return errors.New("--empty=create creates the image file, so it cannot be combined with --dry-run=yes")
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return f.Close()
}

// applySize handles --size=: an image file is grown (never shrunk) to the
// given size, or to the minimal size for --size=auto. A dry run changes
// nothing and plans as if the file had been grown.
func (r *run) applySize(lock *disk.Device, snap *plan.Snapshot, defs []spec.Definition) error {
	dev := *lock
	if dev.IsBlockDevice() {
		return fmt.Errorf("--size= works on image files only; %s is a block device", dev.Path())
	}
	var target uint64
	if r.cfg.size == "auto" {
		target = plan.MinimalSize(defs, *snap)
		r.logf("Minimal image size is %s; %s is %s.", plan.FormatBytes(target), dev.Path(), plan.FormatBytes(snap.Size))
	} else {
		n, err := spec.ParseSize(r.cfg.size)
		if err != nil {
			return err
		}
		target = (n + 4095) / 4096 * 4096
	}
	if target <= snap.Size {
		r.logf("%s is already %s or larger, not growing it.", dev.Path(), plan.FormatBytes(target))
		return nil
	}
	if r.cfg.dryRun {
		r.logf("Planning as if %s were grown to %s (a dry run does not grow it).", dev.Path(), plan.FormatBytes(target))
		snap.Size = target
		return nil
	}
	if err := os.Truncate(dev.Path(), int64(target)); err != nil {
		return fmt.Errorf("grow %s: %w", dev.Path(), err)
	}
	r.logf("Grew %s to %s.", dev.Path(), plan.FormatBytes(target))
	// Reopen so the handle and the snapshot see the new size.
	path := dev.Path()
	dev.Close()
	reopened, err := disk.Open(path, disk.OpenOptions{Lock: true, Exclusive: true})
	if err != nil {
		return err
	}
	*lock = reopened
	s, err := snapshot(reopened)
	*snap = s
	return err
}
