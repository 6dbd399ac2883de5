//go:build qemu

package qemu

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/tests/harness"
)

// runFactoryReset is scenario (f): the seed article's appliance on a virtio
// disk with dracut. Boot 1 creates /home and /var and leaves a file in
// each; boot 2 runs with systemd.factory_reset=1, so sprout (in the
// initrd) erases /home, whose definition says FactoryReset=yes, and
// creates it anew, empty, while /var keeps its file; boot 3, without the
// request, changes nothing.
func (a *artefacts) runFactoryReset(ctx context.Context, dir string) (string, error) {
	sc := scenarioA
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	disk := filepath.Join(dir, "disk.raw")
	if err := harness.CopySparse(a.appliances[sc.sectorSize], disk); err != nil {
		return "", err
	}
	size, err := harness.Size(disk)
	if err != nil {
		return "", err
	}
	size += grow
	if err := harness.Resize(disk, size); err != nil {
		return "", err
	}
	machine := vm{
		kernel: a.kernel, initrd: a.initrds[sc.initrd], disk: disk,
		cmdline: baseCmdline + " " + sc.cmdline, bus: sc.bus, sectorSize: sc.sectorSize,
		timeout: *bootTimeout,
	}
	bootN := func(n int, extra string) (*boot, *harness.Table, error) {
		if n > 1 {
			sc.homeEntry = resetEntry(4, 5)
		}
		m := machine
		m.cmdline += extra
		m.serialLog = filepath.Join(dir, fmt.Sprintf("boot%d.log", n))
		b, err := m.run(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("boot %d: %w", n, err)
		}
		if p := checkGuest(b, sc); len(p) > 0 {
			return nil, nil, fmt.Errorf("boot %d: the booted system is not as expected:\n  %s\n%s", n, strings.Join(p, "\n  "), tail(b.log, 60))
		}
		tbl, err := readTable(ctx, disk, sc.sectorSize)
		return b, tbl, err
	}
	probe := func(b *boot, path string) string {
		l, _ := find(b.guest, "probe-before", "path", path)
		return l.kv["present"]
	}

	_, first, err := bootN(1, "")
	if err != nil {
		return "", err
	}
	reset, afterReset, err := bootN(2, " systemd.factory_reset=1")
	if err != nil {
		return "", err
	}
	var p []string
	if got := probe(reset, "/home"); got != "no" {
		p = append(p, fmt.Sprintf("/home still held boot 1's file after the factory reset (present=%q)", got))
	}
	if got := probe(reset, "/var"); got != "yes" {
		p = append(p, fmt.Sprintf("/var lost boot 1's file in the factory reset (present=%q)", got))
	}
	home := resetEntry(4, 5)
	for _, want := range []string{"Factory reset requested by the kernel command line", `removing partition 4 "home"`,
		fmt.Sprintf(`Partition %d (/dev/vda%d, "home"): create`, home, home)} {
		if !strings.Contains(reset.log, want) {
			p = append(p, fmt.Sprintf("the log of boot 2 does not say %q", want))
		}
	}
	p = append(p, resetTableDiffs(first, afterReset, 4, home)...)
	if len(p) > 0 {
		return "", fmt.Errorf("boot 2 (systemd.factory_reset=1):\n  %s\n%s", strings.Join(p, "\n  "), tail(reset.log, 60))
	}

	quiet, afterQuiet, err := bootN(3, "")
	if err != nil {
		return "", err
	}
	if !strings.Contains(quiet.log, noChanges) || probe(quiet, "/home") != "yes" || probe(quiet, "/var") != "yes" {
		return "", fmt.Errorf("boot 3: want %q and both files kept (home %q, var %q)\n%s", noChanges,
			probe(quiet, "/home"), probe(quiet, "/var"), tail(quiet.log, 60))
	}
	if d := harness.Diff(afterReset, afterQuiet); len(d) > 0 {
		return "", fmt.Errorf("boot 3 changed the table: %s", strings.Join(d, "; "))
	}
	_ = os.Remove(disk)
	return "qemu: scenario f (factory reset): systemd.factory_reset=1 made /home anew, empty; /var kept its file; the next boot changed nothing", nil
}

// initrdCompat is the systemd-repart version sprout follows in the test
// initrds: their unit passes no --compat= (issue 17 item 3 will pin the
// host's systemd, 252 here), so the default.
const initrdCompat = compat.Default

// resetEntry is the number a partition erased by a factory reset gets
// again: the lowest free one (its own) from 254 on, after the highest
// entry (highest+1) as 252 numbers new partitions.
func resetEntry(removed, highest int) int {
	if compat.FirstFreeSlot.In(initrdCompat) {
		return removed
	}
	return highest + 1
}

// resetTableDiffs compares the table after a factory reset with the one
// before it: the same layout, with the reset partition's entry from now
// entry to (its partition UUID may differ: without a machine ID in the
// initrd, UUIDs are random, as with 252).
func resetTableDiffs(before, after *harness.Table, from, to int) []string {
	moved := *before
	moved.Partitions = nil
	for _, q := range before.Partitions {
		if q.Entry == from {
			q.Entry = to
		}
		moved.Partitions = append(moved.Partitions, q)
	}
	var diffs []string
	for _, d := range harness.DiffExcept(&moved, after, map[int]bool{to: true}) {
		diffs = append(diffs, "the table after the reset differs: "+d)
	}
	return diffs
}
