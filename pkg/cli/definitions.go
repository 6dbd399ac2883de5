package cli

import (
	"github.com/sprout-initrd/sprout/pkg/hostfacts"
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
