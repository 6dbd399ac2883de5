// Command sprout grows appliance disks from repart.d partition definitions.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sprout-initrd/sprout/pkg/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}
