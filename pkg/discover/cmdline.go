package discover

import (
	"fmt"
	"strings"

	"github.com/sprout-initrd/sprout/pkg/pollfree"
)

// readCmdline reads the kernel command line into key → value. A later
// word overrides an earlier one, as for the kernel's own root=.
func readCmdline(path string) (map[string]string, error) {
	b, err := pollfree.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return parseCmdline(string(b)), nil
}

// parseCmdline splits a kernel command line into words the way the kernel
// and systemd do: whitespace separates words, and double quotes group text
// with spaces (root="PARTLABEL=my root"); the quotes are removed.
func parseCmdline(s string) map[string]string {
	args := map[string]string{}
	var word strings.Builder
	inQuotes, inWord := false, false
	flush := func() {
		if inWord {
			key, value, _ := strings.Cut(word.String(), "=")
			args[key] = value
		}
		word.Reset()
		inWord = false
	}
	for _, r := range s {
		switch {
		case r == '"':
			inQuotes = !inQuotes
			inWord = true
		case !inQuotes && (r == ' ' || r == '\t' || r == '\n' || r == '\r'):
			flush()
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	flush()
	return args
}
