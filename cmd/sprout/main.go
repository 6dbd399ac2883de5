// Command sprout grows appliance disks from repart.d partition definitions.
package main

import (
	"context"
	"os"

	"github.com/sprout-initrd/sprout/pkg/cli"
)

// Signals are handled where the disk is changed (cli's apply): until
// then their default action is safe, and a no-op run stays lean.
func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr}))
}
