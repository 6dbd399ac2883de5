package encryption

import "github.com/sprout-initrd/sprout/pkg/needs"

// TPM2 (Encrypt=tpm2): one key slot, a key sealed to the TPM2 with the
// systemd-tpm2 token that systemd-cryptsetup unlocks the volume with at
// boot; no other key.
const TPM2 Mode = "tpm2"

func tpm2() Declaration {
	return Declaration{Mode: TPM2, TPM2: true, Needs: luks2Needs.Plus(tpm2Needs)}
}

// tss2 is the TPM2 software stack's package.
func tss2(debian string) needs.Package {
	return needs.Package{Debian: debian, Fedora: "tpm2-tss", Arch: "tpm2-tss", Nixpkgs: "tpm2-tss"}
}

// tpm2Needs is what sealing a key to the TPM2 needs on top of LUKS2:
// systemd-cryptenroll enrolls it; it and systemd-cryptsetup load the
// tpm2-tss libraries at run time (dlopen: an initrd builder's walk of
// their ELF dependencies does not see them; libtss2-sys is what
// libtss2-esys links), and cryptsetup loads systemd's plugin for the
// systemd-tpm2 token; the TPM drivers are built into many kernels.
var tpm2Needs = needs.Set{
	Programs: []needs.Program{
		// Fedora's package of systemd-cryptenroll is not recorded.
		{Name: Cryptenroll, Package: needs.Package{Debian: "systemd", Arch: "systemd", Nixpkgs: "systemd"}},
	},
	Libraries: []needs.Library{
		{Name: "libtss2-esys.so.0", Package: tss2("libtss2-esys-3.0.2-0")},
		{Name: "libtss2-sys.so.1", Package: tss2("libtss2-sys1")},
		{Name: "libtss2-mu.so.0", Package: tss2("libtss2-mu0")},
		{Name: "libtss2-rc.so.0", Package: tss2("libtss2-rc0")},
		{Name: "libtss2-tcti-device.so.0", Package: tss2("libtss2-tcti-device0")},
		{Name: "cryptsetup/libcryptsetup-token-systemd-tpm2.so", Package: needs.Package{Debian: "systemd", Arch: "systemd", Nixpkgs: "systemd"}},
	},
	Modules: []needs.Module{{Name: "tpm_tis", Optional: true}, {Name: "tpm_crb", Optional: true}},
	// Signed PCR policies (a UKI's .pcrsig, enrolled against its
	// .pcrpkey): ukify and systemd-measure sign PCR 11 as it is after
	// systemd-pcrphase-initrd.service has measured "enter-initrd", so a
	// systemd initrd must run it to unlock such a volume (it runs only on
	// a UKI boot: its condition). An initrd builder pulls the unit in from
	// initrd.target.
	Files: []string{"/usr/lib/systemd/systemd-pcrphase", "/usr/lib/systemd/system/systemd-pcrphase-initrd.service"},
}
