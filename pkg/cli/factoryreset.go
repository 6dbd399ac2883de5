package cli

import (
	"os"

	"github.com/sprout-initrd/sprout/pkg/discover"
	"github.com/sprout-initrd/sprout/pkg/plan"
	"github.com/sprout-initrd/sprout/pkg/spec"
)

// Exit codes of --can-factory-reset, as in 252.
const (
	ExitCanFactoryReset    = 0
	ExitCannotFactoryReset = 1
)

// inInitrd reports whether sprout runs in an initrd, the way systemd
// decides it: $SYSTEMD_IN_INITRD when set, else /etc/initrd-release.
func inInitrd() bool {
	if v, ok := os.LookupEnv("SYSTEMD_IN_INITRD"); ok {
		if b, err := parseBool(v); err == nil {
			return b
		}
	}
	_, err := os.Stat("/etc/initrd-release")
	return err == nil
}

// factoryResetRequested decides whether this run resets: --factory-reset=
// when given; else, only in the initrd, the kernel command line or the
// EFI variable (pkg/discover), as 252 does.
func (r *run) factoryResetRequested() (bool, error) {
	if r.cfg.factoryReset != nil {
		return *r.cfg.factoryReset, nil
	}
	if !inInitrd() {
		return false, nil
	}
	yes, source, err := discover.FactoryResetRequest(discover.System(), r.cfg.compat >= factoryResetRequestSince)
	if err != nil {
		// Erasing partitions on a request that cannot be read would be a
		// guess; the run goes on without a reset.
		r.logf("Warning: not resetting: %v", err)
		return false, nil
	}
	if source != "" {
		if yes {
			r.logf("Factory reset requested by %s.", source)
		} else {
			r.logf("Factory reset switched off by %s.", source)
		}
	}
	return yes, nil
}

// factoryResetRequestSince is the systemd-repart version that reads the
// FactoryResetRequest EFI variable instead of FactoryReset.
const factoryResetRequestSince = 258

// removeFactoryResetRequest deletes the FactoryReset EFI variable after
// the reset's table write, so the next boot does not reset again, as 252
// to 257 do. Outside the initrd the variable was not read, so it is left
// alone; so is FactoryResetRequest (258), which
// systemd-factory-reset-complete.service removes once the reset is
// complete (262 leaves it too). A failure is a warning, as in 252: the
// reset itself has happened.
func (r *run) removeFactoryResetRequest() error {
	if !inInitrd() || r.cfg.compat >= factoryResetRequestSince {
		return nil
	}
	if err := discover.RemoveFactoryResetVar(discover.System()); err != nil {
		r.logf("Warning: %v; the next boot will be asked for a factory reset again.", err)
	}
	return nil
}

// canFactoryReset answers --can-factory-reset with its exit code, writing
// nothing and printing nothing, as 252.
func (r *run) canFactoryReset(defs []spec.Definition, snap plan.Snapshot, opts plan.Options) (int, error) {
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
