// Command gofloor is the floor `make bench` holds sprout's no-op against:
// a static Go hello world that links the four packages sprout's design
// names — go-diskfs's partition/gpt, golang.org/x/sys/unix, google/uuid
// and go-systemd's journal and daemon — as blank imports, so that their
// package initialisation runs as it does in sprout. It is built from
// sprout's module, so it links the versions sprout links.
package main

import (
	"fmt"

	_ "github.com/coreos/go-systemd/v22/daemon"
	_ "github.com/coreos/go-systemd/v22/journal"
	_ "github.com/diskfs/go-diskfs/partition/gpt"
	_ "github.com/google/uuid"
	_ "golang.org/x/sys/unix"
)

func main() { fmt.Println("hello, world") }
