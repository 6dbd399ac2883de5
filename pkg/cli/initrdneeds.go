package cli

import (
	"fmt"

	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/initrdneeds"
)

// initrdNeeds is --initrd-needs: read the definitions as a run would (the
// search path under --root, or --definitions=; first name wins; drop-ins)
// and print what an initrd needs for them, or with --initrd-needs=all for
// every format and Encrypt= mode. It reads no disk and writes nothing.
func initrdNeeds(cfg *config, env Env) int {
	r := &run{cfg: cfg, env: env, log: &logger{w: env.Stderr}} // plain lines: no journal, no status
	// An initrd may pin the behaviour only if this binary takes --compat=.
	_, perr := parse([]string{"--compat=" + compat.Oldest.String()})
	pinnable := perr == nil
	var err error
	if cfg.initrdNeeds == "all" {
		if cfg.json == "off" {
			err = initrdneeds.WriteText(env.Stdout, initrdneeds.All(pinnable))
		} else {
			err = initrdneeds.WriteDeclarations(env.Stdout, pinnable, cfg.json == "pretty")
		}
	} else {
		r.warnMissingDefinitionDirs()
		defs, lerr := r.loadDefinitions()
		if lerr != nil {
			err = lerr
		} else if report := initrdneeds.ForDefinitions(defs, pinnable); cfg.json == "off" {
			err = initrdneeds.WriteText(env.Stdout, report)
		} else {
			err = initrdneeds.WriteJSON(env.Stdout, report, cfg.json == "pretty")
		}
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "sprout: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}
