//go:build qemu

package qemu

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/tests/harness"
)

// runFactoryReset is scenario (f): the seed article's appliance on a virtio
// disk with dracut, under UEFI (OVMF boots the kernel: EFI variables, no
// boot loader). Boot 1 creates /home and /var and leaves a file in each;
// then the root asks for a factory reset the way systemd 258 does, with
// the FactoryResetRequest EFI variable (its JSON names this OS and this
// boot; tests/qemu/guest/init writes what systemd-factory-reset request
// would). In boot 2 sprout (in the initrd) honours the variable, erases
// /home, whose definition says FactoryReset=yes, and creates it anew,
// empty, while /var keeps its file; like 262 it leaves the variable, which
// a fixture unit ordered after sprout then removes, as systemd 258's
// systemd-factory-reset-complete.service would (fixture/appliance-initrd),
// and the root sees no request left. (The boot after, which changes
// nothing, was dropped when the scenario moved to UEFI, to pay for the
// firmware's time: every scenario's second boot proves a no-op.) (The kernel command line's systemd.factory_reset=1 is boot 3
// of scenario t.)
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
	// The initrd of this OS: dracut's derives its os-release from the
	// build host (ID=debian), while the request names the appliance
	// (ID=sprout-appliance); an image builder's initrd carries the OS's
	// own, and this fixture gives it that.
	// The fixture's unit removes the request with chattr (efivarfs keeps
	// the variables of unknown vendors immutable); the initrd has its
	// libraries, which mke2fs needs too.
	initrd := filepath.Join(dir, "initrd.img")
	if err := appendFixture(ctx, a.initrds[sc.initrd], filepath.Join(a.repo, "tests/qemu/fixture/appliance-initrd"),
		map[string]string{"usr/bin/chattr": "/usr/bin/chattr"}, initrd); err != nil {
		return "", err
	}
	machine := vm{
		kernel: a.kernel, initrd: initrd, disk: disk,
		cmdline: baseCmdline + " " + sc.cmdline, bus: sc.bus, sectorSize: sc.sectorSize,
		timeout:  *bootTimeout,
		firmware: ovmfCode, vars: filepath.Join(dir, "OVMF_VARS.fd"), firmwareKernel: true,
	}
	if err := harness.CopySparse(ovmfVars, machine.vars); err != nil {
		return "", err
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
	efivar := func(b *boot) string {
		l, _ := find(b.guest, "efivar", "name", "FactoryResetRequest")
		return l.kv["present"]
	}

	requesting, created, err := bootN(1, " sprout_test.factory_reset=request")
	if err != nil {
		return "", err
	}
	if _, ok := first(requesting.guest, "efivar-written"); !ok {
		return "", fmt.Errorf("boot 1 did not write the FactoryResetRequest EFI variable\n%s", tail(requesting.log, 30))
	}
	reset, afterReset, err := bootN(2, " sprout_test.factory_reset=complete")
	if err != nil {
		return "", err
	}
	left, _ := find(reset.guest, "efivar-after-sprout", "name", "FactoryResetRequest")
	var p []string
	if got := probe(reset, "/home"); got != "no" {
		p = append(p, fmt.Sprintf("/home still held boot 1's file after the factory reset (present=%q)", got))
	}
	if got := probe(reset, "/var"); got != "yes" {
		p = append(p, fmt.Sprintf("/var lost boot 1's file in the factory reset (present=%q)", got))
	}
	home := resetEntry(4, 5)
	for _, want := range []string{"Factory reset requested by the EFI variable FactoryResetRequest (made in boot", `removing partition 4 "home"`,
		fmt.Sprintf(`Partition %d (/dev/vda%d, "home"): create`, home, home)} {
		if !strings.Contains(reset.log, want) {
			p = append(p, fmt.Sprintf("the log of boot 2 does not say %q", want))
		}
	}
	if left.kv["present"] != "yes" {
		p = append(p, "sprout removed FactoryResetRequest (262 leaves it to systemd-factory-reset-complete.service): "+left.text)
	}
	if _, ok := first(reset.guest, "efivar-removed"); !ok || efivar(reset) != "no" {
		p = append(p, "the fixture's completion did not remove FactoryResetRequest")
	}
	p = append(p, resetTableDiffs(created, afterReset, 4, home)...)
	if len(p) > 0 {
		return "", fmt.Errorf("boot 2 (FactoryResetRequest):\n  %s\n%s", strings.Join(p, "\n  "), tail(reset.log, 60))
	}

	_ = os.Remove(disk)
	return fmt.Sprintf("qemu: scenario f (factory reset, UEFI): the FactoryResetRequest EFI variable made /home anew, empty; /var kept its file; sprout left the request, its completion removed it (boots reached root in %.1f / %.1f s)",
		requesting.rootUptime, reset.rootUptime), nil
}

// appendFixture writes initrd with the fixture tree and the host's files
// (path in the initrd → host path) appended as another cpio archive (the
// kernel unpacks them in order; a later file wins).
func appendFixture(ctx context.Context, initrd, fixture string, files map[string]string, out string) error {
	b, err := os.ReadFile(initrd)
	if err != nil {
		return err
	}
	tree, err := os.MkdirTemp("", "sprout-fixture-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tree)
	script := `cp -a "$1"/. "$2"/ && shift 2 && while [ $# -gt 0 ]; do mkdir -p "$(dirname "$0/$1")"; cp -L "$2" "$0/$1"; shift 2; done`
	args := []string{"-c", script, tree, fixture, tree}
	for to, from := range files {
		args = append(args, to, from)
	}
	if out, err := exec.CommandContext(ctx, "sh", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("copy the fixture: %w: %s", err, out)
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", "find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc --owner 0:0 --reproducible")
	cmd.Dir = tree
	archive, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("cpio of %s: %w", fixture, err)
	}
	return os.WriteFile(out, append(b, archive...), 0o644)
}

// resetCompat is the systemd-repart version sprout follows in the
// appliances of scenarios f and t: their sprout.service drop-in pins
// --compat=262 (fixture/appliance-initrd and fixture/tpm2-initrd).
const resetCompat compat.Version = 262

// resetEntry is the number a partition erased by a factory reset gets
// again: the lowest free one (its own) from 254 on, after the highest
// entry (highest+1) as 252 numbers new partitions.
func resetEntry(removed, highest int) int {
	if compat.FirstFreeSlot.In(resetCompat) {
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
