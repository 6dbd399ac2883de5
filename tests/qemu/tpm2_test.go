//go:build qemu

package qemu

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// Scenario (t): the article's UEFI appliance (scenario u) whose var.conf
// says Encrypt=tpm2, on a machine with a TPM 2.0 (swtpm, tpm-tis), booted
// from UKIs that carry a signed PCR 11 policy: a .pcrpkey section (the
// public key, made by the test) and a .pcrsig section (systemd-measure's
// signatures of the PCR 11 values systemd-stub will measure;
// build-uefi-appliance.sh --pcr-key). The ESP holds two UKIs, the default
// sprout-appliance.efi and sprout-reset.efi, whose command line adds
// systemd.factory_reset=1, so its PCR 11 differs. sprout, following 262
// (--compat=262, pinned by the fixture's sprout.service drop-in), finds the
// UKI's key in /.extra and enrolls /var against it, with no literal PCRs
// (262's default mask). The initrd ships
// /etc/crypttab ("var /dev/disk/by-partlabel/var - tpm2-device=auto,noauto":
// unlocked when the /var mount needs it, after sprout, not at boot) and the
// root's fstab mounts /dev/mapper/var on /var (x-initrd.mount), as an
// appliance maker writes them (docs/boot.md, "Encrypted partitions";
// fixture/tpm2-initrd). The crypttab has no comment lines: dracut's crypt
// module reads every line and takes each second word for a device to wait
// for.
//
//	boot 1: sprout creates /home and a LUKS2 /var with a systemd-tpm2
//	        token bound to the signed policy; systemd-cryptsetup unlocks
//	        it with the UKI's signature, /var is mounted;
//	boot 2: nothing to do, the GPT areas unchanged, /var unlocked through
//	        the TPM without a prompt, boot 1's file still on it;
//	boot 3: the other UKI (loader.conf's default changed on the ESP):
//	        PCR 11 differs, signed by the same key; /home is made anew,
//	        empty (systemd.factory_reset=1); /var keeps its files and
//	        unlocks.
//
// In every boot the guest also shows that the other UKI's signature (the
// same key, the other PCR 11 value) does not unlock /var, so the unlock
// is the signed policy at work and not a key bound to nothing, and that
// PCR 11 holds what systemd-measure calculate predicted for the UKI.
//
// The guest's checks come from the initrd (cryptsetup luksDump and token
// export, the journal of systemd-cryptsetup@var.service, PCR 11, the
// token unlocks; the fixture's sprout-test-report.service) and from the
// root's init (mounts, lsblk).

// The UKIs on the encrypted appliance's ESP (/EFI/Linux/NAME.efi).
const (
	mainUKI  = "sprout-appliance"
	resetUKI = "sprout-reset"
)

// signedUKIs are the encrypted appliance's signing key and what
// build-uefi-appliance.sh wrote next to the image for each UKI.
type signedUKIs struct {
	public    string            // the PEM public key (the UKIs' .pcrpkey)
	publicB64 string            // as the systemd-tpm2 token stores it
	pcr11     map[string]string // UKI → PCR 11 after "enter-initrd" (systemd-measure calculate)
	sigs      map[string]string // UKI → its .pcrsig, as a file
}

// makeSigningKey makes the RSA key pair that signs the UKIs' PCR 11
// policies in dir and returns the public key's path (private.pem is next
// to it).
func makeSigningKey(ctx context.Context, dir string) (string, error) {
	private, public := filepath.Join(dir, "private.pem"), filepath.Join(dir, "public.pem")
	for _, args := range [][]string{
		{"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", private},
		{"pkey", "-in", private, "-pubout", "-out", public},
	} {
		if out, err := exec.CommandContext(ctx, "openssl", args...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("openssl %s: %w: %s", args[0], err, out)
		}
	}
	return public, nil
}

// read loads what build-uefi-appliance.sh --pcr-key wrote next to image.
func (s *signedUKIs) read(image string) error {
	pub, err := os.ReadFile(s.public)
	if err != nil {
		return err
	}
	s.publicB64 = base64.StdEncoding.EncodeToString(pub)
	s.pcr11, s.sigs = map[string]string{}, map[string]string{}
	b, err := os.ReadFile(image + ".pcr11")
	if err != nil {
		return fmt.Errorf("the UKIs' predicted PCR 11 values: %w", err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if name, value, ok := strings.Cut(l, " "); ok {
			s.pcr11[name] = value
		}
	}
	for _, name := range []string{mainUKI, resetUKI} {
		s.sigs[name] = image + "." + name + ".pcrsig.json"
		if _, ok := s.pcr11[name]; !ok {
			return fmt.Errorf("%s.pcr11 has no value for %s: %q", image, name, b)
		}
	}
	return nil
}

// putOther writes the signature of UKI other onto the ESP, where the
// guest's report tries it (it must not unlock /var).
func (s *signedUKIs) putOther(ctx context.Context, disk, other string) error {
	sig, err := os.ReadFile(s.sigs[other])
	if err != nil {
		return err
	}
	return espWrite(ctx, disk, map[string]string{"::/sprout-test/other-pcrsig.json": string(sig)})
}

// passwordPrompt is how systemd-cryptsetup asks for a passphrase: a TPM
// unlock that did not work falls back to it (and the boot would wait).
var passwordPrompt = []string{"Please enter passphrase", "Enter passphrase for"}

// checkEncryptedGuest checks what the initrd reported about /var: the
// unlock unit ran and succeeded; the LUKS2 header has a systemd-tpm2
// token bound to the signed policy of the test's key for PCR 11 and to no
// literal PCR (262's default); this boot's signature unlocks it and the
// other UKI's does not; PCR 11 holds what systemd-measure predicted for
// the UKI booted; nobody was asked for a passphrase; lsblk shows the
// mapping below the partition.
func checkEncryptedGuest(b *boot, sc scenario) []string {
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
	if luksDumpValue(dump, "Version:") != "2" {
		p = append(p, "cryptsetup luksDump of PARTLABEL=var does not show a LUKS2 header")
	}
	var token struct {
		Type       string `json:"type"`
		PCRs       []int  `json:"tpm2-pcrs"`
		PubKey     string `json:"tpm2_pubkey"`
		PubKeyPCRs []int  `json:"tpm2_pubkey_pcrs"`
	}
	if l, ok := first(b.guest, "token"); !ok || json.Unmarshal([]byte(l.text), &token) != nil {
		p = append(p, "no systemd-tpm2 token exported: "+l.text)
	} else {
		if token.Type != "systemd-tpm2" || len(token.PCRs) != 0 || fmt.Sprint(token.PubKeyPCRs) != "[11]" {
			p = append(p, fmt.Sprintf("the token is %s bound to PCRs %v and signed PCRs %v, want systemd-tpm2, no PCRs (262's default) and signed PCR 11", token.Type, token.PCRs, token.PubKeyPCRs))
		}
		if token.PubKey != sc.signed.publicB64 {
			p = append(p, "the token's public key is not the one the UKIs are signed with (their .pcrpkey)")
		}
	}
	if l, ok := first(b.guest, "pcrphase-initrd"); !ok || l.kv["ActiveState"] != "active" {
		p = append(p, "systemd-pcrphase-initrd.service did not measure enter-initrd: "+l.text)
	}
	if l, _ := first(b.guest, "pcr11"); !strings.EqualFold(l.kv["value"], sc.signed.pcr11[sc.uki]) {
		p = append(p, fmt.Sprintf("PCR 11 is %q, systemd-measure predicted %s for %s", l.kv["value"], sc.signed.pcr11[sc.uki], sc.uki))
	}
	if l, ok := first(b.guest, "signature"); !ok || l.kv["present"] != "yes" {
		p = append(p, "the initrd has no /run/systemd/tpm2-pcr-signature.json (from the UKI's .pcrsig)")
	}
	if l, ok := find(b.guest, "token-unlock", "result", "unlocked"); !ok || !strings.HasPrefix(l.text, "this-boot") {
		p = append(p, "the token did not unlock /var with this boot's signature")
	}
	if _, ok := find(b.guest, "token-unlock", "result", "refused"); !ok {
		p = append(p, "the other UKI's signature (the same key, another PCR 11) was not refused: the policy does not bind PCR 11")
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

// bootFactoryResetUEFI is boot 3 of scenario (t): loader.conf on the ESP
// now makes sprout-reset.efi the default, the same system with
// systemd.factory_reset=1 in its own (signed) command line. PCR 11 differs
// from boots 1 and 2, and is signed by the same key: /var must unlock
// through the TPM as before (the signed policy), /home come back empty as
// partition 5.
func (a *artefacts) bootFactoryResetUEFI(ctx context.Context, sc scenario, machine vm, before *harness.Table) (string, error) {
	if err := espWrite(ctx, machine.disk, map[string]string{
		"::/loader/loader.conf": "timeout 0\neditor no\ndefault " + resetUKI + ".efi\n",
	}); err != nil {
		return "", err
	}
	if err := a.signed.putOther(ctx, machine.disk, mainUKI); err != nil {
		return "", err
	}
	m := machine
	m.serialLog = strings.TrimSuffix(machine.serialLog, "boot2.log") + "boot3-factory-reset.log"
	home := resetEntry(3, 4)
	sc.homeEntry = home
	sc.uki = resetUKI
	b, err := m.run(ctx)
	if err != nil {
		return "", err
	}
	p := checkGuest(b, sc)
	if l, ok := first(b.guest, "cmdline"); !ok || !strings.Contains(l.text, "systemd.factory_reset=1") {
		p = append(p, "boot 3 did not boot "+resetUKI+".efi: "+l.text)
	}
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
	return fmt.Sprintf("boot 3, %s.efi (systemd.factory_reset=1, another signed PCR 11): reached root in %.1f s; /home made anew, empty; /var kept its file and unlocked through the signed policy", resetUKI, b.rootUptime), nil
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
	for target, content := range files {
		if parent := filepath.Dir(target); parent != "::/" && parent != "::" && exec.CommandContext(ctx, "mdir", "-i", img, parent).Run() != nil {
			if out, err := exec.CommandContext(ctx, "mmd", "-i", img, parent).CombinedOutput(); err != nil {
				return fmt.Errorf("mmd %s: %w: %s", parent, err, out)
			}
		}
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
	crypto := []string{"sbin/cryptsetup", "dm-crypt.ko", "systemd-cryptsetup", "systemd-cryptenroll", "libtss2-esys.so", "systemd-pcrphase"}
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
			for _, f := range []string{"libtss2-tcti-device.so", "libtss2-sys.so.1", "libtss2-mu.so", "libtss2-rc.so", "systemd-cryptsetup-generator", "95-dm-notify.rules",
				"initrd.target.wants/systemd-pcrphase-initrd.service"} {
				if !strings.Contains(list, f) {
					return fmt.Errorf("the %s initrd (Encrypt=tpm2) has no %s", name, f)
				}
			}
		}
	}
	return nil
}
