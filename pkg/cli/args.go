package cli

import (
	"fmt"
	"slices"
	"strings"
)

// option is one long option. Like systemd's getopt_long use, an option
// that takes a value accepts both "--name=value" and "--name value", and
// options may come after the device argument.
type option struct {
	name     string
	hasValue bool
	// optionalValue: the value may be left out ("--name" or
	// "--name=value"); the next argument is never taken as it.
	optionalValue bool
	set           func(value string) error
}

// parseArgs applies options and returns the positional arguments; given
// is told the name of each option that was given.
func parseArgs(args []string, opts []option, given func(name string)) ([]string, error) {
	var positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(positional, args[i+1:]...), nil
		case a == "-h":
			a = "--help"
		case !strings.HasPrefix(a, "--") || a == "-":
			positional = append(positional, a)
			continue
		}
		name, value, hasEq := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		k := slices.IndexFunc(opts, func(o option) bool { return o.name == name })
		if k < 0 {
			return nil, fmt.Errorf("unknown option --%s (see --help)", name)
		}
		o := opts[k]
		switch {
		case o.optionalValue:
		case o.hasValue && !hasEq:
			if i+1 >= len(args) {
				return nil, fmt.Errorf("option --%s needs a value", name)
			}
			i++
			value = args[i]
		case !o.hasValue && hasEq:
			return nil, fmt.Errorf("option --%s takes no value", name)
		}
		if err := o.set(value); err != nil {
			return nil, fmt.Errorf("--%s=%s: %w", name, value, err)
		}
		given(name)
	}
	return positional, nil
}
