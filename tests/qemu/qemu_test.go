//go:build qemu

package qemu

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sprout-initrd/sprout/tests/harness"
)

var (
	soakRuns = flag.Int("soak", 0, "TestSoak: how many times to run scenario (a) (make soak passes 50)")
	// Two: run 1 and run 2 each carry a damage (see TestQEMU); a third,
	// undamaged run was dropped to pay for scenario t's boots.
	seedRuns    = flag.Int("runs", 2, "TestQEMU: how many times to run scenario (a)")
	bootTimeout = flag.Duration("boot-timeout", 5*time.Minute, "hard limit for one boot")
	only        = flag.String("only", "", `TestQEMU: run only the scenarios with these letters (e.g. "tu"); default all`)
)

const (
	mib  = int64(1) << 20
	grow = int64(10) << 30 // the article's "qemu-img resize +10G"

	typeHome = "933AC7E1-2EB4-4F13-B844-0E14E2AEF915"
	typeVar  = "4D21B016-B534-45C2-A9FB-5C16E091FD2D"

	// noChanges is what sprout (like systemd-repart) says when a run has
	// nothing to do.
	noChanges = "No changes."
	// repairing starts sprout's line when it rewrites a damaged GPT copy.
	repairing = "Repairing the partition table of"

	// Debian's OVMF (package ovmf): the firmware code, and the variable
	// store template each UEFI machine gets a copy of.
	ovmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	ovmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	// loaderFound is how sprout says it found the UEFI appliance's disk:
	// through systemd-boot's variable naming the ESP (PARTUUID fixed by
	// build-uefi-appliance.sh).
	loaderFound = "EFI variable LoaderDevicePartUUID: PARTUUID=5eed0001-0000-4000-8000-0000000000ef is /dev/vda1 on the disk /dev/vda"
	// repairPrimary is how sprout says it rewrites a torn primary GPT.
	repairPrimary = "the primary GPT is damaged"
)

// scenario is one disk layout and initrd to boot twice.
type scenario struct {
	name       string
	bus        string // virtio or nvme
	sectorSize int
	initrd     string // dracut or initramfs-tools
	cmdline    string // how the disk is named (root=, sprout.device=)
	disk       string // the guest's name for the disk
	// firmware "uefi": OVMF boots the disk (systemd-boot, then the UKI
	// built by build-uefi-appliance.sh with this scenario's initrd and no
	// root= or sprout.device=); "": QEMU's -kernel/-initrd/-append.
	firmware string
	// damages are booted one after another after the no-op boot, each on
	// the disk the boot before left (see damage_test.go).
	damages []damage
	// tearPrimary damages the primary GPT header between the boots (a
	// power cut while it was written): boot 2 must repair it and reach
	// the root instead of being a no-op.
	tearPrimary bool
	// homeEntry is /home's partition number when not the usual one (after
	// a factory reset, which numbers the new entry after the highest, as
	// 252).
	homeEntry int
	// tpm2: the UEFI appliance whose /var is Encrypt=tpm2, on a machine
	// with a TPM 2.0 (swtpm), booted from UKIs with signed PCR 11
	// policies (signed); uki is the one booted ("" for the default);
	// boot 3 is a factory reset from another UKI (tpm2_test.go).
	tpm2   bool
	signed *signedUKIs
	uki    string
	// statusProbe: the initrd carries fixture/status-initrd, which records
	// sprout.service's status lines while it runs; boot 1 must show one
	// in systemctl status while a partition is formatted (issue 19).
	statusProbe bool
}

func (s scenario) partNode(n int) string {
	if strings.HasPrefix(s.disk, "nvme") || strings.HasPrefix(s.disk, "mmcblk") {
		return fmt.Sprintf("/dev/%sp%d", s.disk, n)
	}
	return fmt.Sprintf("/dev/%s%d", s.disk, n)
}

var (
	scenarioA = scenario{name: "a", bus: "virtio", sectorSize: 512, initrd: "dracut",
		cmdline: "root=PARTLABEL=root", disk: "vda"}
	scenarioC = scenario{name: "c", bus: "virtio", sectorSize: 4096, initrd: "dracut",
		cmdline: "root=PARTLABEL=root sprout.device=PARTLABEL=boot", disk: "vda"}
	scenarioD = scenario{name: "d", bus: "virtio", sectorSize: 512, initrd: "initramfs-tools",
		cmdline: "root=PARTLABEL=root", disk: "vda"}
	// The seed article's appliance as it boots: OVMF → systemd-boot → UKI,
	// tmpfs root, squashfs nix-store, every mount by PARTLABEL.
	scenarioU = scenario{name: "u", bus: "virtio", sectorSize: 512, initrd: "dracut",
		disk: "vda", firmware: "uefi"}
	scenarioE = scenario{name: "e", bus: "virtio", sectorSize: 512, initrd: "dracut",
		cmdline: "root=PARTLABEL=root", disk: "vda", tearPrimary: true}
	// The article's boot with /var encrypted (Encrypt=tpm2) and a TPM.
	scenarioT = scenario{name: "t", bus: "virtio", sectorSize: 512, initrd: "dracut-tpm2",
		disk: "vda", firmware: "uefi", tpm2: true}
)

// uefiInitrds are the initrds a UEFI appliance (UKI) is built with; the
// tpm2 one (definitions-tpm2) with the encrypted appliance's fixture.
var uefiInitrds = []string{"dracut", "dracut-tpm2"}

// baseCmdline makes every failure end the boot instead of waiting at a
// shell: dracut powers off, initramfs-tools and the kernel reboot (and QEMU
// runs with -no-reboot).
//
// sprout logs to the journal when it runs under systemd; journald copies it
// to the console so the host sees what sprout said ("No changes.").
// no_timer_check: on a loaded host, TCG can fail the kernel's IO-APIC timer
// test ("IO-APIC + timer doesn't work!", a panic before any of sprout's code
// runs); the soak hit it.
const baseCmdline = "console=ttyS0 ro panic=-1 printk.time=1 no_timer_check rd.shell=0 rd.emergency=poweroff systemd.journald.forward_to_console=1"

// artefacts are built once per test binary run.
type artefacts struct {
	repo, dir  string // repository root, build/qemu
	kernel     string // vmlinuz
	initrds    map[string]string
	appliances map[int]string    // by sector size
	uefi       map[string]string // UEFI appliance images, by initrd
	// signed is the encrypted appliance's signed UKIs (scenario t).
	signed signedUKIs
}

// prepare builds everything a test needs into build/qemu/<name> (the
// kernel download is shared in build/qemu/kernel), so the tier and a soak
// can run at the same time.
func prepare(t *testing.T, name string) *artefacts {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the QEMU tier needs root (loop devices for the 4K image, mount namespaces for mkinitramfs)")
	}
	tools := []string{"qemu-system-x86_64", "dracut", "mkinitramfs", "mksquashfs", "mkfs.vfat", "mkfs.ext4",
		"sfdisk", "losetup", "unshare", "busybox", "blkid", "apt-get", "dpkg", "depmod", "cpio",
		"mcopy", "mmd", "objcopy", "objdump", "swtpm", "swtpm_setup", "lsinitrd", "lsinitramfs", "cryptsetup"}
	missing := harness.MissingTools(tools...)
	for _, f := range []string{ovmfCode, ovmfVars, "/usr/lib/systemd/boot/efi/linuxx64.efi.stub",
		"/usr/lib/systemd/boot/efi/systemd-bootx64.efi"} {
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("the QEMU tier cannot run: missing %s; run tests/qemu/scripts/deps.sh (apt-get install)",
			strings.Join(missing, ", "))
	}
	repo, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	a := &artefacts{repo: repo, dir: filepath.Join(repo, "build", "qemu", name),
		initrds: map[string]string{}, appliances: map[int]string{}, uefi: map[string]string{}}
	if err := os.MkdirAll(a.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	step := func(what string, f func() error) {
		t.Helper()
		start := time.Now()
		if err := f(); err != nil {
			t.Fatalf("preparing the QEMU tier: %s: %v", what, err)
		}
		t.Logf("qemu: %s (%.1f s)", what, time.Since(start).Seconds())
	}

	var sprout string
	step("build sprout", func() (err error) {
		sprout, err = harness.SproutBinary(ctx, a.dir)
		return err
	})
	var kver, kroot string
	step("fetch Debian's kernel", func() (err error) {
		kver, kroot, err = a.fetchKernel(ctx)
		return err
	})
	for name, b := range map[string]struct{ builder, defs string }{
		"dracut":          {"initrd/build-dracut-initrd.sh", "tests/qemu/definitions"},
		"initramfs-tools": {"initrd/build-initramfs-tools-initrd.sh", "tests/qemu/definitions"},
		"dracut-tpm2":     {"initrd/build-dracut-initrd.sh", "tests/qemu/definitions-tpm2"},
	} {
		out := filepath.Join(a.dir, "initrd-"+name+".img")
		step("build the "+name+" initrd ("+b.defs+")", func() error {
			_, err := a.script(ctx, b.builder, "--kernel-root", kroot, "--kver", kver,
				"--sprout", sprout, "--definitions", filepath.Join(repo, b.defs), "--out", out)
			return err
		})
		a.initrds[name] = out
	}
	step("check what the initrds hold (encryption only where a definition asks for it)", func() error {
		return checkInitrdContents(ctx, a.initrds)
	})
	for _, ss := range []int{512, 4096} {
		out := filepath.Join(a.dir, fmt.Sprintf("appliance-%d.raw", ss))
		step(fmt.Sprintf("build the appliance image (%d-byte sectors)", ss), func() error {
			_, err := a.script(ctx, "tests/qemu/scripts/build-appliance.sh", "--out", out, "--sector-size", strconv.Itoa(ss))
			return err
		})
		a.appliances[ss] = out
	}
	for _, name := range uefiInitrds {
		out := filepath.Join(a.dir, "uefi-appliance-"+name+".raw")
		args := []string{"--kernel", a.kernel, "--initrd", a.initrds[name], "--out", out}
		if name == "dracut-tpm2" {
			step("make the key pair that signs the encrypted appliance's UKIs", func() (err error) {
				a.signed.public, err = makeSigningKey(ctx, a.dir)
				return err
			})
			args = append(args, "--fixture", filepath.Join(repo, "tests/qemu/fixture/tpm2-initrd"),
				"--pcr-key", strings.TrimSuffix(a.signed.public, "public.pem")+"private.pem,"+a.signed.public,
				"--also-uki", resetUKI+"=systemd.factory_reset=1")
		}
		step("build the UEFI appliance image (systemd-boot, UKI with the "+name+" initrd)", func() error {
			_, err := a.script(ctx, "tests/qemu/scripts/build-uefi-appliance.sh", args...)
			return err
		})
		a.uefi[name] = out
		if name == "dracut-tpm2" {
			if err := a.signed.read(out); err != nil {
				t.Fatal(err)
			}
		}
	}
	return a
}

// fetchKernel runs fetch-kernel.sh (Debian's kernel, cached under
// build/qemu/kernel for every tier that boots) and sets a.kernel. kver is
// the kernel release, kroot the tree its package was unpacked into.
func (a *artefacts) fetchKernel(ctx context.Context) (kver, kroot string, err error) {
	out, err := a.script(ctx, "tests/qemu/scripts/fetch-kernel.sh", filepath.Join(a.repo, "build", "qemu", "kernel"))
	if err != nil {
		return "", "", err
	}
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "KVER="); ok {
			kver = v
		}
		if v, ok := strings.CutPrefix(l, "ROOT="); ok {
			kroot = v
		}
	}
	if kver == "" || kroot == "" {
		return "", "", fmt.Errorf("fetch-kernel.sh printed no KVER/ROOT:\n%s", out)
	}
	a.kernel = filepath.Join(kroot, "boot", "vmlinuz-"+kver)
	return kver, kroot, nil
}

// script runs a script of the repository and returns its stdout.
func (a *artefacts) script(ctx context.Context, rel string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(a.repo, rel), args...)
	cmd.Dir = a.repo
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s: %w\n%s%s", rel, err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// outcome is what one scenario run measured.
type outcome struct {
	boots         int // boots that reached the root's init
	first, second *boot
	summary       string
}

// runScenario copies the appliance, grows the copy by 10 GiB, boots it
// twice and checks both boots from the guest's report and from the host.
func (a *artefacts) runScenario(ctx context.Context, sc scenario, label, dir string) (outcome, error) {
	var o outcome
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return o, err
	}
	disk := filepath.Join(dir, "disk.raw")
	image := a.appliances[sc.sectorSize]
	if sc.firmware == "uefi" {
		image = a.uefi[sc.initrd]
	}
	if err := harness.CopySparse(image, disk); err != nil {
		return o, err
	}
	size, err := harness.Size(disk)
	if err != nil {
		return o, err
	}
	size += grow
	if sc.bus == "sd" {
		size = nextPowerOfTwo(size) // QEMU's sd-card wants it so
	}
	if err := harness.Resize(disk, size); err != nil {
		return o, err
	}
	before, err := readTable(ctx, disk, sc.sectorSize)
	if err != nil {
		return o, fmt.Errorf("the image before the first boot: %w", err)
	}
	machine := vm{
		kernel: a.kernel, initrd: a.initrds[sc.initrd], disk: disk,
		cmdline: baseCmdline + " " + sc.cmdline, bus: sc.bus, sectorSize: sc.sectorSize,
		timeout: *bootTimeout,
	}
	if sc.firmware == "uefi" {
		machine.firmware, machine.vars = ovmfCode, filepath.Join(dir, "OVMF_VARS.fd")
		if err := harness.CopySparse(ovmfVars, machine.vars); err != nil {
			return o, err
		}
	}
	if sc.tpm2 {
		machine.tpmState = filepath.Join(dir, "tpm")
		_ = os.RemoveAll(machine.tpmState) // a new TPM for a new appliance
		sc.signed, sc.uki = &a.signed, mainUKI
		// The other UKI's signature, for the guest's check that it does
		// not unlock /var (tests/qemu/fixture/tpm2-initrd).
		if err := a.signed.putOther(ctx, disk, resetUKI); err != nil {
			return o, err
		}
	}

	// Boot 1: sprout creates /home and /var.
	machine.serialLog = filepath.Join(dir, "boot1.log")
	o.first, err = machine.run(ctx)
	if err != nil {
		return o, fmt.Errorf("%s: boot 1: %w", label, err)
	}
	o.boots++
	if problems := checkGuest(o.first, sc); len(problems) > 0 {
		return o, fmt.Errorf("%s: boot 1: the booted system is not as expected:\n  %s\n%s", label,
			strings.Join(problems, "\n  "), tail(o.first.log, 60))
	}
	if late := lateRescans(o.first.log, sc); len(late) > 0 {
		return o, fmt.Errorf("%s: boot 1: the partition table was re-read after sprout finished:\n  %s\n%s", label,
			strings.Join(late, "\n  "), tail(o.first.log, 60))
	}
	if sc.statusProbe {
		if problems := checkStatusProbe(o.first); len(problems) > 0 {
			return o, fmt.Errorf("%s: boot 1: sprout's status while it ran:\n  %s\n%s", label,
				strings.Join(problems, "\n  "), tail(o.first.log, 60))
		}
	}
	after, err := readTable(ctx, disk, sc.sectorSize)
	if err != nil {
		return o, fmt.Errorf("%s: after boot 1: %w", label, err)
	}
	if problems := checkTable(ctx, disk, before, after, size, sc); len(problems) > 0 {
		return o, fmt.Errorf("%s: after boot 1, the host sees:\n  %s", label, strings.Join(problems, "\n  "))
	}
	gptBefore, err := gptAreas(disk, size)
	if err != nil {
		return o, err
	}

	if sc.tearPrimary {
		if err := tearPrimaryGPT(disk, sc.sectorSize); err != nil {
			return o, err
		}
	}

	// Boot 2: nothing to do, and nothing written (or, with a torn primary
	// GPT, the table repaired and the root reached all the same).
	machine.serialLog = filepath.Join(dir, "boot2.log")
	o.second, err = machine.run(ctx)
	if err != nil {
		return o, fmt.Errorf("%s: boot 2: %w", label, err)
	}
	o.boots++
	problems := checkGuest(o.second, sc)
	if sc.tearPrimary {
		if err := a.checkRepairBoot(ctx, o, sc, label, disk, after, problems); err != nil {
			return o, err
		}
		o.summary = fmt.Sprintf("qemu: %s: boot 1 reached root in %.1f s; primary GPT torn; boot 2 repaired it and reached root in %.1f s (sprout waited: %v)",
			label, o.first.rootUptime, o.second.rootUptime, strings.Contains(o.second.log, "Waiting up to"))
		return o, nil
	}
	if !strings.Contains(o.second.log, noChanges) {
		problems = append(problems, fmt.Sprintf("sprout did not say %q", noChanges))
	}
	if late := lateRescans(o.second.log, sc); len(late) > 0 {
		problems = append(problems, "the partition table was re-read after sprout finished: "+strings.Join(late, "; "))
	}
	if n := rescans(o.second.log, sc); n != 1 {
		problems = append(problems, fmt.Sprintf("the kernel read the partition table %d times (want 1: udev re-read it after sprout?)", n))
	}
	if len(problems) > 0 {
		return o, fmt.Errorf("%s: boot 2:\n  %s\n%s", label, strings.Join(problems, "\n  "), tail(o.second.log, 60))
	}
	gptAfter, err := gptAreas(disk, size)
	if err != nil {
		return o, err
	}
	if gptAfter != gptBefore {
		return o, fmt.Errorf("%s: boot 2 wrote to the GPT areas (first/last MiB): %s → %s", label, gptBefore, gptAfter)
	}
	again, err := readTable(ctx, disk, sc.sectorSize)
	if err != nil {
		return o, err
	}
	if d := harness.Diff(after, again); len(d) > 0 {
		return o, fmt.Errorf("%s: boot 2 changed the table: %s", label, strings.Join(d, "; "))
	}
	o.summary = fmt.Sprintf("qemu: %s: boot 1 reached root in %.1f s (%d partition-table reads, %.0f s wall); boot 2 no-op, GPT unchanged, reached root in %.1f s",
		label, o.first.rootUptime, rescans(o.first.log, sc), o.first.wall.Seconds(), o.second.rootUptime)
	if sc.tpm2 {
		line, err := a.bootFactoryResetUEFI(ctx, sc, machine, after)
		if err != nil {
			return o, fmt.Errorf("%s: boot 3 (systemd.factory_reset=1): %w", label, err)
		}
		o.boots++
		o.summary += "\n  " + line
	}
	for i, d := range sc.damages {
		machine.serialLog = filepath.Join(dir, fmt.Sprintf("boot%d-damaged.log", i+3))
		line, err := a.bootDamaged(ctx, sc, machine, d, size, after)
		if err != nil {
			return o, fmt.Errorf("%s: boot %d, %s: %w", label, i+3, d.name, err)
		}
		o.boots++
		o.summary += "\n  " + line
	}
	return o, nil
}

// nextPowerOfTwo is the smallest power of two that is at least n.
func nextPowerOfTwo(n int64) int64 {
	p := int64(1)
	for p < n {
		p <<= 1
	}
	return p
}

// bootDamaged damages the disk's GPT and boots it. A torn primary (the
// backup intact) must boot like any other: root reached, /home and /var
// mounted, the primary valid afterwards and the table as before; on the
// -kernel paths sprout must say it repaired it (under UEFI the firmware may
// get there first). With both copies gone, or a table sprout refuses, the
// boot must stop by itself, with sprout's message, before the boot
// timeout (the failure policy of sprout.service(8), for systemd's
// OnFailure= and initramfs-tools' panic alike).
func (a *artefacts) bootDamaged(ctx context.Context, sc scenario, machine vm, d damage, size int64, table *harness.Table) (string, error) {
	if err := damageDisk(machine.disk, d); err != nil {
		return "", err
	}
	if primaryProblem(machine.disk) == "" && !d.stops {
		return "", fmt.Errorf("the damage left a valid primary GPT (test bug)")
	}
	b, err := machine.run(ctx)
	if d.stops {
		switch {
		case b == nil:
			return "", err
		case b.hung:
			return "", fmt.Errorf("the boot hung (no end within %s): %v", machine.timeout, err)
		case err == nil:
			return "", fmt.Errorf("the boot reached the root although sprout could not do its work\n%s", tail(b.log, 40))
		}
		msg := sproutError(b.log)
		if msg == "" {
			return "", fmt.Errorf("the boot failed without a message from sprout\n%s", tail(b.log, 60))
		}
		if sc.initrd == "initramfs-tools" && !strings.Contains(b.log, "sprout failed (exit 1); the boot stops here") {
			return "", fmt.Errorf("the initramfs-tools script did not stop the boot (no panic message)\n%s", tail(b.log, 60))
		}
		return fmt.Sprintf("%s: boot stopped by itself after %.0f s; sprout said: %s", d.name, b.wall.Seconds(), msg), nil
	}
	if err != nil {
		return "", err
	}
	problems := checkGuest(b, sc)
	repaired := strings.Contains(b.log, repairing)
	byFirmware := !repaired && firstPartitionRead(b.log, sc) == len(table.Partitions)
	switch {
	case sc.firmware == "" && !repaired:
		problems = append(problems, fmt.Sprintf("sprout did not say %q", repairing))
	case sc.firmware != "" && !repaired && !byFirmware:
		problems = append(problems, "neither the firmware nor sprout repaired the primary GPT")
	}
	if late := lateRescans(b.log, sc); len(late) > 0 {
		problems = append(problems, "the partition table was re-read after sprout finished: "+strings.Join(late, "; "))
	}
	if p := primaryProblem(machine.disk); p != "" {
		problems = append(problems, "afterwards: "+p)
	}
	if p := gptCopyProblem(machine.disk, size/512-1); p != "" {
		problems = append(problems, "afterwards: backup GPT: "+p)
	}
	if len(problems) > 0 {
		return "", fmt.Errorf("\n  %s\n%s", strings.Join(problems, "\n  "), tail(b.log, 60))
	}
	now, err := readTable(ctx, machine.disk, sc.sectorSize)
	if err != nil {
		return "", err
	}
	if diff := harness.Diff(table, now); len(diff) > 0 {
		return "", fmt.Errorf("the repaired table differs: %s", strings.Join(diff, "; "))
	}
	who := "sprout repaired it"
	if byFirmware {
		who = "the firmware (OVMF) had repaired it before Linux ran"
	}
	return fmt.Sprintf("%s: reached root in %.1f s, %s, primary GPT valid afterwards", d.name, b.rootUptime, who), nil
}

// sproutError returns sprout's last error line from a boot log ("" when
// sprout said nothing that looks like a failure).
func sproutError(log string) string {
	var msg string
	for _, l := range strings.Split(log, "\n") {
		// From the journal ("sprout[PID]: sprout: …"), or straight on the
		// console (initramfs-tools: "sprout: …").
		if _, text, ok := strings.Cut(l, "sprout["); ok {
			if _, text, ok = strings.Cut(text, "]: "); ok && strings.Contains(text, "sprout: ") {
				msg = strings.TrimSpace(text)
			}
		} else if strings.HasPrefix(l, "sprout: ") {
			msg = strings.TrimSpace(l)
		}
	}
	return msg
}

// firstPartitionRead returns how many partitions the kernel listed the
// first time it read the disk's partition table (0 if it found none).
func firstPartitionRead(log string, sc scenario) int {
	m := partitionList(sc.disk).FindStringSubmatch(log)
	if m == nil {
		return 0
	}
	return len(strings.Fields(m[1]))
}

// checkRepairBoot checks boot 2 of a scenario whose primary GPT was torn:
// sprout repaired it, the root and every fstab mount were reached, and the
// image's GPT is whole again and equal to the table after boot 1.
func (a *artefacts) checkRepairBoot(ctx context.Context, o outcome, sc scenario, label, disk string,
	after *harness.Table, problems []string) error {
	if !strings.Contains(o.second.log, repairPrimary) {
		problems = append(problems, fmt.Sprintf("sprout did not say %q", repairPrimary))
	}
	if late := lateRescans(o.second.log, sc); len(late) > 0 {
		problems = append(problems, "the partition table was re-read after sprout finished: "+strings.Join(late, "; "))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: boot 2 (torn primary GPT):\n  %s\n%s", label, strings.Join(problems, "\n  "), tail(o.second.log, 60))
	}
	state, err := gptProblems(disk, sc.sectorSize)
	if err != nil {
		return err
	}
	if state.primary != "" || state.backup != "" {
		return fmt.Errorf("%s: after boot 2 the GPT is still damaged: primary %q, backup %q", label, state.primary, state.backup)
	}
	again, err := readTable(ctx, disk, sc.sectorSize)
	if err != nil {
		return err
	}
	if d := harness.Diff(after, again); len(d) > 0 {
		return fmt.Errorf("%s: the repaired table differs from the one after boot 1: %s", label, strings.Join(d, "; "))
	}
	return nil
}

// readTable runs sfdisk --json on the image; a 4K image goes through a
// loop device with 4096-byte sectors (sfdisk reads files as 512).
func readTable(ctx context.Context, disk string, sectorSize int) (*harness.Table, error) {
	if sectorSize == 512 {
		return harness.ReadTable(ctx, disk)
	}
	loop, err := harness.AttachLoop(ctx, disk, int64(sectorSize))
	if err != nil {
		return nil, err
	}
	defer loop.Detach(ctx)
	return harness.ReadTable(ctx, loop.Dev)
}

// gptAreas hashes the first and the last MiB of the disk: the protective
// MBR, both GPT headers and both entry arrays.
func gptAreas(disk string, size int64) (string, error) {
	head, err := harness.RangeHash(disk, 0, mib)
	if err != nil {
		return "", err
	}
	end, err := harness.RangeHash(disk, size-mib, mib)
	if err != nil {
		return "", err
	}
	return head[:16] + "/" + end[:16], nil
}

// checkGuest checks the root's report: both new file systems mounted from
// the new partitions, ext4, writable, 2:1; everything else of the fstab
// mounted too.
func checkGuest(b *boot, sc scenario) []string {
	var p []string
	g := b.guest
	if _, ok := first(g, "root-reached"); !ok {
		p = append(p, "no root-reached line")
	}
	if l, ok := first(g, "mount-all"); !ok || l.kv["failed"] != "0" {
		p = append(p, "mounting the fstab failed: "+l.text)
	}
	want := []struct{ path, fstype, node, opts string }{
		{"/", "ext4", sc.partNode(3), "ro"},
		{"/boot", "vfat", sc.partNode(1), "ro"},
		{"/store", "squashfs", sc.partNode(2), "ro"},
		{"/home", "ext4", sc.partNode(max(sc.homeEntry, 4)), "rw"},
		{"/var", "ext4", sc.partNode(5), "rw"},
	}
	if sc.firmware == "uefi" {
		// The article's filesystems.nix; the root is a tmpfs (no device).
		want = []struct{ path, fstype, node, opts string }{
			{"/", "tmpfs", "", "rw"},
			{"/boot", "vfat", sc.partNode(1), "ro"},
			{"/nix/store", "squashfs", sc.partNode(2), "ro"},
			{"/home", "ext4", sc.partNode(max(sc.homeEntry, 3)), "rw"},
			{"/var", "ext4", sc.partNode(4), "rw"},
		}
		if sc.tpm2 {
			// /dev/mapper/var, the LUKS2 volume's mapping, is dm-0.
			want[4].node = "/dev/dm-0"
			p = append(p, checkEncryptedGuest(b, sc)...)
		}
		p = append(p, checkUEFIGuest(b, sc)...)
	}
	for _, w := range want {
		l, ok := find(g, "mount", "path", w.path)
		switch {
		case !ok:
			p = append(p, w.path+" is not mounted")
		case l.kv["fstype"] != w.fstype || l.kv["source"] != w.node || !strings.HasPrefix(l.kv["opts"], w.opts):
			p = append(p, fmt.Sprintf("%s: got %s, want %s on %s, %s", w.path, l.text, w.fstype, w.node, w.opts))
		}
	}
	var fsBytes [2]float64
	for i, dir := range []string{"/home", "/var"} {
		l, ok := find(g, "writable", "path", dir)
		if !ok {
			p = append(p, dir+" is not writable")
			continue
		}
		fsBytes[i], _ = strconv.ParseFloat(l.kv["fs_bytes"], 64)
	}
	if fsBytes[1] > 0 {
		if r := fsBytes[0] / fsBytes[1]; r < 1.95 || r > 2.05 {
			p = append(p, fmt.Sprintf("/home is %.2f times /var as the guest sees them, want 2", r))
		}
	}
	if l, ok := find(g, "disk", "dev", sc.disk); !ok {
		p = append(p, "the guest has no disk "+sc.disk)
	} else if l.kv["logical_block_size"] != strconv.Itoa(sc.sectorSize) {
		p = append(p, fmt.Sprintf("the guest's disk has %s-byte sectors, want %d", l.kv["logical_block_size"], sc.sectorSize))
	}
	for _, bad := range []string{"Failed to start sprout.service", "sprout failed", "Dependency failed"} {
		if strings.Contains(b.log, bad) {
			p = append(p, "the log says "+strconv.Quote(bad))
		}
	}
	return p
}

// checkStatusProbe checks what fixture/status-initrd recorded: systemd
// got sprout's STATUS= lines (the unit's NotifyAccess=), and systemctl
// status showed one naming the partition being formatted while sprout
// was still running.
func checkStatusProbe(b *boot) []string {
	var p []string
	var statuses, snapshot []string
	for _, g := range b.guest {
		switch g.what {
		case "sprout-status":
			statuses = append(statuses, g.text)
		case "systemctl-status":
			snapshot = append(snapshot, g.text)
		}
	}
	if len(statuses) == 0 {
		return []string{"systemd never had a status line for sprout.service (no STATUS= reached it)"}
	}
	formatting := false
	for _, s := range statuses {
		formatting = formatting || strings.Contains(s, "state=activating") && strings.Contains(s, "text=Formatting")
	}
	if !formatting {
		p = append(p, "no status line said what was being formatted while sprout ran: "+strings.Join(statuses, " | "))
	}
	shot := strings.Join(snapshot, "\n")
	if !strings.Contains(shot, "Active: activating") || !regexp.MustCompile(`Status: "Formatting[^"]*"`).MatchString(shot) {
		p = append(p, "systemctl status, taken while a partition was formatted, shows no such Status: line:\n    "+strings.Join(snapshot, "\n    "))
	}
	return p
}

// checkUEFIGuest checks what only the UEFI appliance shows: sprout found
// the disk through LoaderDevicePartUUID (there is no root= or
// sprout.device=), systemd mounted everything in the initrd (the root's init
// had nothing left to mount), and lsblk in the booted system shows the
// four partitions mounted.
func checkUEFIGuest(b *boot, sc scenario) []string {
	var p []string
	if !strings.Contains(b.log, loaderFound) {
		p = append(p, "sprout did not log "+strconv.Quote(loaderFound))
	}
	for _, w := range []string{"root=", "sprout.device="} {
		if l, ok := first(b.guest, "cmdline"); !ok || strings.Contains(l.text, w) {
			p = append(p, "the command line names "+w+": "+l.text)
		}
	}
	for _, g := range b.guest {
		if g.what == "mounted-by-init" {
			p = append(p, "the initrd did not mount "+g.kv["path"]+" (the root's init did)")
		}
	}
	if !sc.tpm2 {
		// The root's fstab has no hand-written line for /home and /var:
		// sprout generated them from MountPoint= (the fixture's drop-in),
		// and the initrd mounted the partitions by them (above, below).
		for _, dir := range []string{"/home", "/var"} {
			if l, ok := find(b.guest, "fstab-generated", "path", dir); !ok || !strings.HasPrefix(l.kv["source"], "UUID=") {
				p = append(p, "the root's fstab has no line sprout generated for "+dir)
			}
		}
	}
	lsblk := map[string]string{}
	for _, g := range b.guest {
		if f := strings.Fields(lsblkRow(g.text)); g.what == "lsblk" && len(f) >= 2 {
			lsblk[f[0]] = f[len(f)-1]
		}
	}
	for i, dir := range []string{"/boot", "/nix/store", "/home", "/var"} {
		node := strings.TrimPrefix(sc.partNode(i+1), "/dev/")
		if dir == "/home" {
			node = strings.TrimPrefix(sc.partNode(max(sc.homeEntry, 3)), "/dev/")
		}
		if dir == "/var" && sc.tpm2 {
			node = "var" // the mapping, a child of vda4 in lsblk's tree
		}
		if lsblk[node] != dir {
			p = append(p, fmt.Sprintf("lsblk does not show %s mounted on %s (got %q)", node, dir, lsblk[node]))
		}
	}
	return p
}

// lsblkRow drops the tree drawing before an lsblk row's name: "|-vda4",
// "| `-var" (a child of a partition that is not the last one).
func lsblkRow(text string) string { return strings.TrimLeft(text, "|`- ") }

// checkTable checks the grown table from the host: the image's partitions
// untouched, home and var added after them, 2:1, filling the disk, ext4
// made, and the backup GPT at the disk's end.
func checkTable(ctx context.Context, disk string, before, after *harness.Table, size int64, sc scenario) []string {
	ss := sc.sectorSize
	var p []string
	if len(after.Partitions) != len(before.Partitions)+2 {
		return []string{fmt.Sprintf("%d partitions, want %d", len(after.Partitions), len(before.Partitions)+2)}
	}
	for i, old := range before.Partitions {
		now := after.Partitions[i]
		if now.Start != old.Start || now.Size != old.Size || now.Type != old.Type || now.UUID != old.UUID ||
			now.Name != old.Name || now.Attrs != old.Attrs {
			p = append(p, fmt.Sprintf("partition %d changed: %+v → %+v", i+1, old, now))
		}
	}
	last := before.Partitions[len(before.Partitions)-1]
	home, vr := after.Partitions[len(before.Partitions)], after.Partitions[len(before.Partitions)+1]
	if home.Type != typeHome || home.Name != "home" || vr.Type != typeVar || vr.Name != "var" {
		p = append(p, fmt.Sprintf("new partitions are %s %q and %s %q, want home and var", home.Type, home.Name, vr.Type, vr.Name))
	}
	if home.Start <= last.Start+last.Size-1 || vr.Start <= home.Start+home.Size-1 {
		p = append(p, "new partitions overlap the image's")
	}
	if r := float64(home.Size) / float64(vr.Size); r < 1.99 || r > 2.01 {
		p = append(p, fmt.Sprintf("home:var = %.3f, want 2", r))
	}
	sectors := uint64(size) / uint64(ss)
	arraySectors := uint64(128*128) / uint64(ss)
	if want := sectors - 2 - arraySectors; after.LastLBA != want {
		p = append(p, fmt.Sprintf("last usable LBA %d, want %d: the backup GPT was not moved to the end", after.LastLBA, want))
	}
	if unused := (after.LastLBA - (vr.Start + vr.Size - 1)) * uint64(ss); unused > uint64(mib) {
		p = append(p, fmt.Sprintf("%d bytes left unused at the end", unused))
	}
	if misplaced, err := harness.BackupMisplaced(disk, int64(ss)); err != nil || misplaced {
		p = append(p, fmt.Sprintf("backup GPT header not at the last LBA (err %v)", err))
	}
	if sc.tpm2 {
		// The file system is inside the LUKS2 volume: the host sees the
		// LUKS2 header (blkid), not ext4.
		id, err := harness.Probe(ctx, disk, vr.StartBytes(after), vr.SizeBytes(after))
		if err != nil || id["TYPE"] != "crypto_LUKS" || id["VERSION"] != "2" {
			p = append(p, fmt.Sprintf("partition \"var\" holds %v (err %v), want LUKS2 (Encrypt=tpm2)", id, err))
		}
	}
	for _, part := range []harness.Partition{home, vr} {
		if sc.tpm2 && part.Name == "var" {
			continue
		}
		id, err := harness.Probe(ctx, disk, part.StartBytes(after), part.SizeBytes(after))
		if err != nil || id["TYPE"] != "ext4" || id["LABEL"] != part.Name {
			p = append(p, fmt.Sprintf("partition %q holds %v (err %v), want ext4 labelled %q", part.Name, id, err, part.Name))
		}
	}
	return p
}

// sproutDone is how sprout's last line of a run ends: it prints it after
// udev has processed the events the run caused.
var sproutDone = regexp.MustCompile(`(All done\.|No changes\.)\s*$`)

var timestamp = regexp.MustCompile(`^\[\s*([0-9]+\.[0-9]+)\]`)

// lateRescans returns the kernel's partition-table reads that came after
// sprout's last line. Such a read (udev re-reading the table after sprout
// returned) removes and re-adds every partition under the mounts ordered
// after sprout: the hang the unit's udev handling exists to prevent. Lines
// are compared by their timestamps when both have one (journald forwards
// sprout's lines with them), else by their order on the console.
func lateRescans(log string, sc scenario) []string {
	lines := strings.Split(log, "\n")
	doneAt, doneTS := -1, -1.0
	for i, l := range lines {
		if strings.Contains(l, "sprout") && sproutDone.MatchString(l) || strings.TrimSpace(l) == "All done." || strings.TrimSpace(l) == noChanges {
			doneAt, doneTS = i, -1
			if m := timestamp.FindStringSubmatch(l); m != nil {
				doneTS, _ = strconv.ParseFloat(m[1], 64)
			}
		}
	}
	if doneAt < 0 {
		return []string{"(sprout's last line not found)"}
	}
	re := partitionList(sc.disk)
	var late []string
	for i, l := range lines {
		if !re.MatchString(l) {
			continue
		}
		m := timestamp.FindStringSubmatch(l)
		if doneTS >= 0 && m != nil {
			if ts, _ := strconv.ParseFloat(m[1], 64); ts > doneTS {
				late = append(late, l)
			}
		} else if i > doneAt {
			late = append(late, l)
		}
	}
	return late
}

// rescans counts how often the kernel printed the disk's partition list,
// that is read the partition table: once when the driver probes the disk;
// again when something (udev's watch on a closed writer) re-reads it.
func rescans(log string, sc scenario) int {
	return len(partitionList(sc.disk).FindAllString(log, -1))
}

// partitionList matches the kernel's line listing a disk's partitions
// when it reads the table: "[    6.35]  vda: vda1 vda2 vda3" or
// "[ 56.98]  nvme0n1: p1 p2 p3"; the submatch is the list. Not the SD
// card's probe line "[ 18.71] mmcblk0: mmc0:4567 QEMU! 16.0 GiB".
func partitionList(disk string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^\[\s*[0-9.]+\]\s+` + regexp.QuoteMeta(disk) + `:((?: [^\s:]*[0-9])*)\s*$`)
}

func TestQEMU(t *testing.T) {
	a := prepare(t, "tier")
	runsDir := filepath.Join(a.dir, "runs")
	_ = os.RemoveAll(runsDir)
	type job struct {
		sc    scenario
		label string
	}
	var jobs []job
	// Torn tables ride on runs that have booted twice already: each
	// damage is one more boot of the same disk, not a new disk. (Scenario e
	// tears the primary header of the dracut -kernel path.)
	torn := []damage{tornHeader, tornEntries}
	// The longest runs first (d boots five times, u four, t three times
	// under UEFI), so that two VMs are busy until the end. Scenario d's
	// last boot is on a table sprout refuses: initramfs-tools must stop the
	// boot as a systemd initrd does (scenario a run 2).
	scD, scU := scenarioD, scenarioU
	scD.damages, scU.damages = append(torn, zeroDiskGUID), torn
	jobs = append(jobs,
		job{scU, "scenario u (the article's boot: OVMF, systemd-boot, UKI, tmpfs root, no root=)"},
		job{scenarioT, "scenario t (the article's boot with Encrypt=tpm2 /var: OVMF + swtpm, signed UKIs, unlocked by systemd-cryptsetup through the signed PCR 11 policy; boot 3 another UKI, a factory reset)"},
		job{scD, "scenario d (initramfs-tools: busybox /init + udev, no systemd)"},
	)
	for i := 1; i <= *seedRuns; i++ {
		sc := scenarioA
		switch i {
		case 1:
			sc.damages = []damage{tornEntries}
		case 2:
			sc.damages = []damage{bothDestroyed}
		}
		jobs = append(jobs, job{sc, fmt.Sprintf("scenario a run %d (virtio, dracut, root=PARTLABEL=)", i)})
	}
	jobs = append(jobs,
		job{scenarioC, "scenario c (4096-byte sectors, dracut, sprout.device=PARTLABEL=)"},
		job{scenarioE, "scenario e (virtio, dracut, root=PARTLABEL=, primary GPT torn before boot 2)"},
	)
	if *only != "" {
		var kept []job
		for _, j := range jobs {
			if strings.Contains(*only, j.sc.name) {
				kept = append(kept, j)
			}
		}
		jobs = kept
	}
	runF := *only == "" || strings.Contains(*only, "f")
	var mu sync.Mutex
	var summaries []string
	t.Run("boots", func(t *testing.T) {
		// Scenario f boots with the others (it used to run alone after
		// them, one VM on a 2-VM machine).
		t.Run("f", func(t *testing.T) {
			if !runF {
				t.Skipf("-only=%s", *only)
			}
			t.Parallel()
			dir := filepath.Join(runsDir, "f-factory-reset")
			summary, err := a.runFactoryReset(context.Background(), dir)
			if err != nil {
				t.Fatalf("scenario f: %v\n(logs in %s)", err, dir)
			}
			t.Log(summary)
			mu.Lock()
			summaries = append(summaries, summary)
			mu.Unlock()
		})
		for i, j := range jobs {
			t.Run(fmt.Sprintf("%s%d", j.sc.name, i), func(t *testing.T) {
				t.Parallel()
				dir := filepath.Join(runsDir, fmt.Sprintf("%02d-%s", i, j.sc.name))
				o, err := a.runScenario(context.Background(), j.sc, j.label, dir)
				if err != nil {
					t.Fatalf("%v\n(logs in %s)", err, dir)
				}
				t.Log(o.summary)
				mu.Lock()
				summaries = append(summaries, o.summary)
				mu.Unlock()
				_ = os.Remove(filepath.Join(dir, "disk.raw")) // keep the logs, not 10 GiB sparse files
			})
		}
	})
	report := strings.Join(summaries, "\n")
	want := len(jobs)
	if runF {
		want++
	}
	fmt.Printf("%s\nqemu: %d/%d scenario runs passed\n", report, len(summaries), want)
	_ = os.WriteFile(filepath.Join(runsDir, "summary.txt"), []byte(report+"\n"), 0o644)
}

// TestSoak boots scenario (a) -soak times (fresh disk, first boot, no-op
// boot), two at a time, and reports how many boots reached the root.
func TestSoak(t *testing.T) {
	if *soakRuns <= 0 {
		t.Skip("soak runs only with -soak=N (make soak)")
	}
	a := prepare(t, "soak")
	runsDir := filepath.Join(a.dir, "runs")
	_ = os.RemoveAll(runsDir)
	type result struct {
		boots int
		err   error
		times [2]float64
	}
	results := make([]result, *soakRuns)
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				dir := filepath.Join(runsDir, fmt.Sprintf("%03d", i+1))
				label := fmt.Sprintf("soak %d/%d", i+1, *soakRuns)
				o, err := a.runScenario(context.Background(), scenarioA, label, dir)
				r := result{boots: o.boots, err: err}
				if o.first != nil {
					r.times[0] = o.first.rootUptime
				}
				if o.second != nil {
					r.times[1] = o.second.rootUptime
				}
				results[i] = r
				if err == nil {
					fmt.Println(o.summary)
					_ = os.RemoveAll(dir)
				} else {
					fmt.Printf("qemu: %s FAILED: %s (logs in %s)\n", label, firstLine(err.Error()), dir)
					_ = os.Remove(filepath.Join(dir, "disk.raw"))
				}
			}
		}()
	}
	for i := range *soakRuns {
		work <- i
	}
	close(work)
	wg.Wait()

	reached, failed := 0, 0
	var slowest, total float64
	var n int
	for i, r := range results {
		reached += r.boots
		for _, s := range r.times {
			if s > 0 {
				total += s
				n++
				slowest = max(slowest, s)
			}
		}
		if r.err != nil {
			failed++
			t.Errorf("run %d: %v", i+1, r.err)
		}
	}
	avg := 0.0
	if n > 0 {
		avg = total / float64(n)
	}
	line := fmt.Sprintf("soak: %d/%d boots reached root (%d runs × first boot + no-op boot); %d/%d runs passed every check; time to root: mean %.1f s, slowest %.1f s",
		reached, 2**soakRuns, *soakRuns, *soakRuns-failed, *soakRuns, avg, slowest)
	fmt.Println(line)
	_ = os.WriteFile(filepath.Join(runsDir, "summary.txt"), []byte(line+"\n"), 0o644)
}

func firstLine(s string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	if sc.Scan() {
		return sc.Text()
	}
	return s
}
