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
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/apply"
	"github.com/sprout-initrd/sprout/pkg/blockdev"
	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/discover"
	"github.com/sprout-initrd/sprout/pkg/gpt"
	"github.com/sprout-initrd/sprout/pkg/mkfs"
	"github.com/sprout-initrd/sprout/pkg/plan"
	"github.com/sprout-initrd/sprout/pkg/pollfree"
	"github.com/sprout-initrd/sprout/pkg/repartd"
	"github.com/sprout-initrd/sprout/pkg/report"
)

// Exit codes of --can-factory-reset, as in 252.
const (
	ExitCanFactoryReset    = 0
	ExitCannotFactoryReset = 1
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

// Env is what a run needs from its surroundings.
type Env struct {
	Stdout, Stderr io.Writer
	// Getenv reads the environment for the specifiers' facts; nil means
	// os.Getenv. (go-systemd reads $JOURNAL_STREAM and $NOTIFY_SOCKET
	// from the process's environment itself.)
	Getenv func(string) string
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
		fmt.Fprintf(env.Stdout, "sprout %s (repart.d compatible with systemd-repart %d to %d; --compat=%d)\n",
			Version, compat.Oldest, compat.Newest, cfg.compat)
		return ExitOK
	}
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if cfg.initrdNeeds != "" {
		return initrdNeeds(cfg, env)
	}
	toJournal, _ := journal.StderrIsJournalStream()
	r := &run{cfg: cfg, env: env, log: newLogger(env.Stderr, toJournal)}
	code, err := r.main(ctx)
	if err != nil {
		id := MessageRefused
		var refusal *apply.Refusal
		if r.writing && !errors.As(err, &refusal) {
			id = MessageFailed
		}
		r.log.outcome(journal.PriErr, id, "sprout: "+err.Error())
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

// run holds one invocation's state.
type run struct {
	cfg *config
	env Env
	log *logger
	// writing: apply has started; an error from here on may come after
	// a write (unless apply says it refused first).
	writing bool
	// discardLimits are the disk's, read when the plan discards.
	discardLimits *plan.DiscardLimits
}

func (r *run) logf(format string, args ...any) { r.log.infof(format, args...) }

func (r *run) main(ctx context.Context) (code int, err error) {
	r.warnMissingDefinitionDirs()
	defs, err := r.loadDefinitions()
	if err != nil {
		return 0, err
	}
	if len(defs) == 0 && r.cfg.empty == plan.EmptyRefuse && !compat.NoDefinitionsReadsDisk.In(r.cfg.compat) {
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
	opts := plan.Options{Empty: r.cfg.empty, Seed: seed, Formats: mkfs.Capabilities(), Encryption: r.probeEncryption(defs),
		Discard:   plan.DiscardPolicy{On: r.cfg.discard, Budget: r.cfg.discardBudget},
		Selection: r.cfg.selection, Compat: r.cfg.compat}

	if r.cfg.empty == plan.EmptyCreate {
		if err := createImage(r.cfg.device, r.cfg.dryRun); err != nil {
			return 0, err
		}
		// A refused run leaves no new file behind.
		defer func() {
			if err != nil && !r.writing {
				os.Remove(r.cfg.device)
			}
		}()
	}
	session, err := blockdev.OpenSession(r.cfg.device, blockdev.SessionOptions{Write: !r.cfg.dryRun})
	if err != nil {
		return 0, err
	}
	r.log.device = session.Path()
	defer session.Release()

	snap, err := plan.ReadSnapshot(session.Reader(), session.Path())
	if err != nil {
		if !errors.Is(err, gpt.ErrCorrupt) || (r.cfg.empty != plan.EmptyForce && r.cfg.empty != plan.EmptyCreate) {
			return 0, err
		}
		// --empty=force replaces whatever table is there, a damaged one too.
		r.logf("Replacing the damaged partition table (--empty=%s): %v", r.cfg.empty, err)
		snap.Label, snap.OtherLabel = plan.LabelOther, "damaged GPT"
	}
	var growTo uint64
	if r.cfg.size != "" {
		if growTo, err = r.sizeTarget(session, &snap, defs, opts.Compat); err != nil {
			return 0, err
		}
	}

	if r.cfg.canFactoryReset {
		return r.canFactoryReset(defs, snap, opts)
	}
	opts.FactoryReset = r.factoryResetRequested()
	// The planner refuses what cannot run (a missing mkfs, a partition too
	// small for its file system) in a dry run and a real run alike.
	p, err := plan.Make(defs, snap, opts)
	if err == nil && p.Discards() && session.Reader().IsBlockDevice() {
		// The disk's discard limits decide whether anything is discarded;
		// they are read only when the plan would discard, so that a no-op
		// boot reads no more than it needs, and the plan is made again.
		l, lerr := session.DiscardLimits()
		if lerr != nil {
			return 0, lerr
		}
		r.discardLimits = &plan.DiscardLimits{MaxBytes: uint64(l.MaxBytes), Granularity: uint64(l.Granularity)}
		opts.Discard.Limits = r.discardLimits
		p, err = plan.Make(defs, snap, opts)
	}
	if err == nil && growTo != 0 && !r.cfg.dryRun {
		// The plan was made for the grown file and accepted: grow it now,
		// and plan again from what is on disk after the growth.
		if snap, err = r.growImage(session, growTo); err != nil {
			return 0, err
		}
		p, err = plan.Make(defs, snap, opts)
	}
	if err != nil {
		// Name the disk: the refusal is about it, not about a definition.
		return 0, fmt.Errorf("%s: %w", session.Path(), err)
	}
	for _, n := range p.Notices {
		r.logf("%s", n)
	}
	files, err := r.generatedFiles(p)
	if err != nil {
		return 0, err
	}
	node := func(n int) string { return blockdev.PartitionNode(session.Path(), n) }
	rows := report.Rows(p, node)
	if r.cfg.json == "off" && (r.cfg.pretty == nil || *r.cfg.pretty) {
		if err := report.Table(r.env.Stdout, rows, r.cfg.legend); err != nil {
			return 0, err
		}
		// The bar and the tree of the layout the run leaves (the dry run's
		// plan, a real run's result), before it is applied, as
		// systemd-repart prints them; --no-legend keeps the rows alone.
		if r.cfg.legend {
			err := report.Picture(r.env.Stdout, p.DiskSize, report.Slices(p, node), pictureOptions(r.env.Stdout, r.env.Stderr, r.env.Getenv))
			if err != nil {
				return 0, err
			}
		}
	}

	switch {
	case !p.Changed():
		r.log.outcome(journal.PriInfo, MessageNoChanges, "No changes.")
		r.settleFactoryReset(p, opts.FactoryReset)
		if r.cfg.dryRun {
			r.showGenerated(files)
			break
		}
		if err := apply.CatchUpKernel(ctx, session, p, r.logf); err != nil {
			return 0, fmt.Errorf("%s: the partition table is on disk, but the kernel could not be told about its partitions: %w", session.Path(), err)
		}
		if err := r.writeGenerated(files); err != nil {
			return 0, err
		}
	case r.cfg.dryRun:
		r.logf("Planned steps, as systemd-repart %d would take them (--compat=%d):", p.Compat, p.Compat)
		if err := report.Steps(r.env.Stderr, p); err != nil {
			return 0, err
		}
		r.showGenerated(files)
		r.logf("Dry run: nothing was written. Re-run with --dry-run=no to apply.")
	default:
		r.log.compat(p.Compat)
		if err := r.apply(ctx, session, p); err != nil {
			return 0, err
		}
		r.log.partitions(p, node)
		r.logOutcomes(p, session.Path())
		r.settleFactoryReset(p, opts.FactoryReset)
		if err := r.writeGenerated(files); err != nil {
			return 0, err
		}
		r.logf("All done.")
	}
	if r.cfg.json != "off" {
		if err := report.JSON(r.env.Stdout, rows, r.cfg.json == "pretty"); err != nil {
			return 0, err
		}
	}
	return ExitOK, nil
}

// apply writes the plan through the session (blockdev.Session writes
// through a second, unlocked handle while the first keeps the lock).
func (r *run) apply(ctx context.Context, session *blockdev.Session, p *plan.Plan) error {
	// SIGINT and SIGTERM stop a run cleanly only from here on. Before,
	// nothing has been written and their default action is safe; and a
	// no-op run is spared the thread that signal delivery needs.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	r.writing = true
	// Formatting logs from several goroutines, progress from its own.
	var mu sync.Mutex
	locked := func(f func(string)) func(string) {
		return func(line string) {
			mu.Lock()
			defer mu.Unlock()
			f(line)
		}
	}
	logLine := locked(func(line string) { r.logf("%s", line) })
	return apply.Run(ctx, session, p, apply.Options{
		DiscardLimits: r.discardLimits,
		Log:           func(format string, args ...any) { logLine(fmt.Sprintf(format, args...)) },
		Progress:      &apply.Progress{Say: locked(r.log.console), Status: locked(r.log.status)},

		AfterFactoryReset: r.removeFactoryResetRequest,
	})
}

// logOutcomes logs the outcomes of an applied plan besides the
// partitions it made or grew: a repaired table, a factory reset.
func (r *run) logOutcomes(p *plan.Plan, disk string) {
	for _, s := range p.Steps {
		switch s := s.(type) {
		case plan.RepairTable:
			r.log.outcome(journal.PriNotice, MessageRepaired,
				fmt.Sprintf("Repaired the partition table of %s: %s.", disk, s.Reason))
		case plan.FactoryReset:
			erased := make([]string, len(s.Erase))
			for i, e := range s.Erase {
				erased[i] = fmt.Sprintf("%d %q", e.Index, e.Label)
			}
			r.log.outcome(journal.PriNotice, MessageFactoryReset,
				fmt.Sprintf("Factory reset of %s: erased partition %s; made anew, empty.", disk, strings.Join(erased, ", ")))
		}
	}
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
	b, err := pollfree.ReadFile(path)
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

// factoryResetRequested decides whether this run resets: --factory-reset=
// when given; else, only in the initrd, the kernel command line or the
// EFI variable (discover.FactoryResetRequested: FactoryReset, or from 258
// FactoryResetRequest). A request that cannot be read, or is not for
// this boot, is a warning, and no reset: erasing partitions on it would
// be a guess.
func (r *run) factoryResetRequested() bool {
	req, err := discover.FactoryResetRequested(discover.System(), r.cfg.factoryReset, r.cfg.compat)
	switch {
	case err != nil:
		r.logf("Warning: not resetting: %v", err)
		return false
	case req.Source != "" && req.Yes:
		r.logf("Factory reset requested by %s.", req.Source)
	case req.Source != "":
		r.logf("Factory reset switched off by %s.", req.Source)
	}
	return req.Yes
}

// removeFactoryResetRequest deletes the FactoryReset EFI variable after
// the reset's table write, so the next boot does not reset again, as 252
// to 257 do. Outside the initrd the variable was not read, so it is left
// alone; so is FactoryResetRequest (258), which
// systemd-factory-reset-complete.service removes once the reset is
// complete (262 leaves it too). A failure is a warning, as in 252: the
// reset itself has happened.
func (r *run) removeFactoryResetRequest() error {
	if !discover.InInitrd() || discover.RequestVariable(r.cfg.compat) {
		return nil
	}
	if err := discover.RemoveFactoryResetVar(discover.System()); err != nil {
		r.logf("Warning: %v; the next boot will be asked for a factory reset again.", err)
	}
	return nil
}

// canFactoryReset answers --can-factory-reset with its exit code, writing
// nothing and printing nothing, as 252.
func (r *run) canFactoryReset(defs []repartd.Definition, snap plan.Snapshot, opts plan.Options) (int, error) {
	ok, err := plan.CanFactoryReset(defs, snap, opts)
	switch {
	case err != nil:
		return 0, err
	case ok:
		return ExitCanFactoryReset, nil
	}
	return ExitCannotFactoryReset, nil
}

// settleFactoryReset removes the request after a successful real run that
// was asked to reset but had nothing left to erase: the first boot of a
// fresh disk, or the boot after a crash that came between the reset's table
// write and the removal. Leaving the variable would erase the partitions
// just made on the next boot.
func (r *run) settleFactoryReset(p *plan.Plan, requested bool) {
	if !requested || r.cfg.dryRun {
		return
	}
	for _, s := range p.Steps {
		if _, ok := s.(plan.FactoryReset); ok {
			return // removed by the reset step itself
		}
	}
	_ = r.removeFactoryResetRequest()
}
