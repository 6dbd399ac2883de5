package cli

import (
	"syscall"

	"github.com/sprout-initrd/sprout/pkg/hostfacts"
	"github.com/sprout-initrd/sprout/pkg/pollfree"
	"github.com/sprout-initrd/sprout/pkg/repartd"
	"github.com/sprout-initrd/sprout/pkg/sdvalue"
)

// loadDefinitions reads the repart.d files, with Label='s specifiers
// resolved from --root (or "/") and the running kernel, and says which
// lines were ignored as systemd-repart 252 ignores them.
func (r *run) loadDefinitions() ([]repartd.Definition, error) {
	specifiers := sdvalue.LazySpecifiers(func() sdvalue.Specifiers {
		return hostfacts.Read(r.cfg.root, r.env.Getenv).Specifiers()
	})
	// Keys and values newer than the version followed are refused here,
	// naming file:line and the version that added them.
	defs, err := repartd.Load(repartd.Options{Root: r.cfg.root, Dirs: r.cfg.definitions, Specifiers: specifiers, Compat: r.cfg.compat})
	if err != nil {
		return nil, err
	}
	for _, d := range defs {
		for _, w := range d.Warnings {
			r.logf("Warning: %s", w)
		}
	}
	return defs, nil
}

// warnMissingDefinitionDirs: like systemd-repart, a missing --definitions=
// directory is no error, but a typo there silently disables the
// first-boot growth, so say it.
func (r *run) warnMissingDefinitionDirs() {
	for _, d := range r.cfg.definitions {
		if _, err := pollfree.Stat(d); pollfree.Errno(err) == syscall.ENOENT {
			r.logf("Warning: the definitions directory %s does not exist.", d)
		}
	}
}
