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
	growStack()
	os.Exit(cli.Main(context.Background(), os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr}))
}

// growStack makes the runtime give the main goroutine a 16 KiB stack
// before the run starts, while the stack holds three frames. A goroutine's
// stack starts small and is copied to one twice its size when a call does
// not fit; the no-op's deepest calls need about 8 KiB, and the copy made
// there, mid-run, walks the metadata of every frame on the stack: it cost
// the no-op about 60 µs, more than reading the GPT (docs/benchmarks.md).
//
//go:noinline
func growStack() {
	var frame [8 << 10]byte
	keep(frame[:])
}

//go:noinline
func keep([]byte) {}
