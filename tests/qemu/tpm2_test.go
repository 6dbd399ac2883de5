//go:build qemu

package qemu

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/tests/harness"
)

// Scenario (t): the article's UEFI appliance (scenario u) whose var.conf
// says Encrypt=tpm2, on a machine with a TPM 2.0 (swtpm, tpm-tis). The
// initrd ships /etc/crypttab ("var /dev/disk/by-partlabel/var -
// tpm2-device=auto,noauto": unlocked when the /var mount needs it, after
// sprout, not at boot) and the root's fstab mounts /dev/mapper/var on /var
// (x-initrd.mount), as an appliance maker writes them (docs/boot.md,
// "Encrypted partitions"; fixture/tpm2-initrd). The crypttab has no
// comment lines: dracut's crypt module reads every line and takes each
// second word for a device to wait for.
//
//	boot 1: sprout creates /home and a LUKS2 /var with a systemd-tpm2
//	        token (no PCR: --compat=262's default); systemd-cryptsetup
//	        unlocks it, /var is mounted;
//	boot 2: nothing to do, the GPT areas unchanged, /var unlocked through
//	        the TPM without a prompt, boot 1's file still on it;
//	boot 3: systemd.factory_reset=1 (a loader entry with that option):
//	        /home is made anew, empty; /var keeps its files and unlocks.
//
// The guest's checks come from the initrd (cryptsetup luksDump, the
// journal of systemd-cryptsetup@var.service; the fixture's
// sprout-test-report.service) and from the root's init (mounts, lsblk).

// passwordPrompt is how systemd-cryptsetup asks for a passphrase: a TPM
// unlock that did not work falls back to it (and the boot would wait).
var passwordPrompt = []string{"Please enter passphrase", "Enter passphrase for"}

// checkEncryptedGuest checks what the initrd reported about /var: the
// unlock unit ran and succeeded, the LUKS2 header has a systemd-tpm2 token
// bound to the default PCRs, nobody was asked for a passphrase, and lsblk shows the
// partition as crypto_LUKS.
func checkEncryptedGuest(b *boot) []string {
	var p []string
	if l, ok := first(b.guest, "cryptsetup-unit"); !ok || l.kv["ActiveState"] != "active" || l.kv["Result"] != "success" {
		p = append(p, "systemd-cryptsetup@var.service is not active: "+l.text)
	}
	var dump []string
	finished := false
	for _, g := range b.guest {
		switch g.what {
		case "luksdump":
			dump = append(dump, strings.TrimSpace(g.text))
		case "journal-cryptsetup":
			finished = finished || strings.HasPrefix(g.text, "Finished systemd-cryptsetup@var.service")
		}
	}
	// The token as cryptsetup's systemd-tpm2 plugin prints it (the initrd
	// has the plugin): "0: systemd-tpm2", then "tpm2-hash-pcrs:   7".
	if luksDumpValue(dump, "Version:") != "2" {
		p = append(p, "cryptsetup luksDump of PARTLABEL=var does not show a LUKS2 header")
	}
	if !strings.Contains(strings.Join(dump, "\n"), ": systemd-tpm2") {
		p = append(p, "cryptsetup luksDump of PARTLABEL=var shows no systemd-tpm2 token")
	}
	// The default PCRs of the version the initrd's sprout follows: 7 up
	// to 257, none from 258 on.
	wantPCRs := "7"
	if compat.NoDefaultPCRs.In(initrdCompat) {
		wantPCRs = ""
	}
	if pcrs := luksDumpValue(dump, "tpm2-hash-pcrs:"); pcrs != wantPCRs {
		p = append(p, fmt.Sprintf("the systemd-tpm2 token is bound to PCRs %q, want %q (the default of --compat=%d)", pcrs, wantPCRs, initrdCompat))
	}
	if !finished {
		p = append(p, "the journal of systemd-cryptsetup@var.service has no \"Finished\" line")
	}
	for _, prompt := range passwordPrompt {
		if strings.Contains(b.log, prompt) {
			p = append(p, "a passphrase was asked for: "+prompt)
		}
	}
	// lsblk's tree: the mapping "var" is the child of vda4. (Its FSTYPE
	// column is empty in this root, which has no udev database.)
	var tree []string
	for _, g := range b.guest {
		if f := strings.Fields(lsblkRow(g.text)); g.what == "lsblk" && len(f) > 0 {
			tree = append(tree, f[0])
		}
	}
	child := false
	for i, name := range tree {
		child = child || name == "vda4" && i+1 < len(tree) && tree[i+1] == "var"
	}
	if !child {
		p = append(p, fmt.Sprintf("lsblk does not show the mapping var below vda4: %v", tree))
	}
	return p
}

// luksDumpValue returns the value after key in luksDump's lines.
func luksDumpValue(dump []string, key string) string {
	for _, l := range dump {
		if v, ok := strings.CutPrefix(l, key); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// bootFactoryResetUEFI is boot 3 of scenario (t): the ESP gets a loader
// entry for the same UKI with systemd.factory_reset=1 added to its command
// line (without Secure Boot, systemd-stub takes the loader's options over
// its built-in ones), made the default; nothing else on the disk changes.
// /home must come back empty (as partition resetEntry(3, 4)), /var keep
// its file and unlock through the TPM as before (the command line is in
// no PCR bound).
func (a *artefacts) bootFactoryResetUEFI(ctx context.Context, sc scenario, machine vm, before *harness.Table) (string, error) {
	cmdline, err := ukiCmdline(filepath.Join(a.dir, "uefi-appliance-"+sc.initrd+".raw"))
	if err != nil {
		return "", err
	}
	entry := "title sprout test appliance (factory reset)\nefi /EFI/Linux/sprout-appliance.efi\noptions " + cmdline + " systemd.factory_reset=1\n"
	if err := espWrite(ctx, machine.disk, map[string]string{
		"::/loader/entries/factory-reset.conf": entry,
		"::/loader/loader.conf":                "timeout 0\neditor no\ndefault factory-reset.conf\n",
	}); err != nil {
		return "", err
	}
	m := machine
	m.serialLog = strings.TrimSuffix(machine.serialLog, "boot2.log") + "boot3-factory-reset.log"
	home := resetEntry(3, 4)
	sc.homeEntry = home
	b, err := m.run(ctx)
	if err != nil {
		return "", err
	}
	p := checkGuest(b, sc)
	if l, ok := find(b.guest, "probe-before", "path", "/home"); !ok || l.kv["present"] != "no" {
		p = append(p, "/home still held boot 2's file after the factory reset: "+l.text)
	}
	if l, ok := find(b.guest, "probe-before", "path", "/var"); !ok || l.kv["present"] != "yes" {
		p = append(p, "/var lost its file in the factory reset: "+l.text)
	}
	for _, want := range []string{"Factory reset requested by the kernel command line", `removing partition 3 "home"`,
		fmt.Sprintf(`Partition %d (/dev/vda%d, "home"): create`, home, home)} {
		if !strings.Contains(b.log, want) {
			p = append(p, fmt.Sprintf("the log does not say %q", want))
		}
	}
	after, err := readTable(ctx, machine.disk, sc.sectorSize)
	if err != nil {
		return "", err
	}
	p = append(p, resetTableDiffs(before, after, 3, home)...)
	if len(p) > 0 {
		return "", fmt.Errorf("\n  %s\n%s", strings.Join(p, "\n  "), tail(b.log, 60))
	}
	return fmt.Sprintf("boot 3, systemd.factory_reset=1: reached root in %.1f s; /home made anew, empty; /var kept its file and unlocked through the TPM again", b.rootUptime), nil
}

// ukiCmdline reads the .cmdline section of the appliance's UKI.
func ukiCmdline(image string) (string, error) {
	dir, err := os.MkdirTemp("", "sprout-uki-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	uki := filepath.Join(dir, "uki.efi")
	if out, err := exec.Command("mcopy", "-i", image+"@@1M", "::/EFI/Linux/sprout-appliance.efi", uki).CombinedOutput(); err != nil {
		return "", fmt.Errorf("mcopy the UKI out of %s: %w: %s", image, err, out)
	}
	section := filepath.Join(dir, "cmdline")
	if out, err := exec.Command("objcopy", "-O", "binary", "--only-section=.cmdline", uki, section).CombinedOutput(); err != nil {
		return "", fmt.Errorf("objcopy .cmdline: %w: %s", err, out)
	}
	b, err := os.ReadFile(section)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return "", fmt.Errorf("the UKI has no .cmdline (%v)", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// espWrite writes files onto the ESP (partition 1, at 1 MiB, as
// build-uefi-appliance.sh makes it) with mtools, without mounting it.
func espWrite(ctx context.Context, disk string, files map[string]string) error {
	dir, err := os.MkdirTemp("", "sprout-esp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	img := disk + "@@1M"
	if out, err := exec.CommandContext(ctx, "mmd", "-D", "s", "-i", img, "::/loader/entries").CombinedOutput(); err != nil &&
		!strings.Contains(string(out), "already exists") {
		return fmt.Errorf("mmd: %w: %s", err, out)
	}
	for target, content := range files {
		src := filepath.Join(dir, filepath.Base(target))
		if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
			return err
		}
		if out, err := exec.CommandContext(ctx, "mcopy", "-o", "-i", img, src, target).CombinedOutput(); err != nil {
			return fmt.Errorf("mcopy %s: %w: %s", target, err, out)
		}
	}
	return nil
}

// checkInitrdContents checks both directions of "encryption only when a
// definition asks for it": the initrds built from tests/qemu/definitions
// (no Encrypt=) hold no cryptsetup, no dm-crypt and no TPM libraries; the
// one built from definitions-tpm2 (Encrypt=tpm2) holds all that unlocking
// and enrolling need.
func checkInitrdContents(ctx context.Context, initrds map[string]string) error {
	crypto := []string{"sbin/cryptsetup", "dm-crypt.ko", "systemd-cryptsetup", "systemd-cryptenroll", "libtss2-esys.so"}
	for name, img := range initrds {
		lister := "lsinitrd"
		if name == "initramfs-tools" {
			lister = "lsinitramfs"
		}
		out, err := exec.CommandContext(ctx, lister, img).Output()
		if err != nil {
			return fmt.Errorf("%s %s: %w", lister, img, err)
		}
		list := string(out)
		for _, f := range crypto {
			has := strings.Contains(list, f)
			switch {
			case name == "dracut-tpm2" && !has:
				return fmt.Errorf("the %s initrd (Encrypt=tpm2) has no %s", name, f)
			case name != "dracut-tpm2" && has:
				return fmt.Errorf("the %s initrd (no Encrypt=) has %s", name, f)
			}
		}
		if name == "dracut-tpm2" {
			for _, f := range []string{"libtss2-tcti-device.so", "libtss2-sys.so.1", "libtss2-mu.so", "libtss2-rc.so", "systemd-cryptsetup-generator", "95-dm-notify.rules"} {
				if !strings.Contains(list, f) {
					return fmt.Errorf("the %s initrd (Encrypt=tpm2) has no %s", name, f)
				}
			}
		}
	}
	return nil
}
