package cli

import (
	"github.com/sprout-initrd/sprout/pkg/encryption"
	"github.com/sprout-initrd/sprout/pkg/luks"
	"github.com/sprout-initrd/sprout/pkg/mkfs"
	"github.com/sprout-initrd/sprout/pkg/repartd"
)

// probeEncryption finds what Encrypt= needs (cryptsetup, and for TPM2
// systemd-cryptenroll and a TPM2 device) when a definition asks for it,
// so the planner refuses a run that would fail halfway.
func (r *run) probeEncryption(defs []repartd.Definition) encryption.Capabilities {
	s := encryption.Settings{KeyFile: r.cfg.keyFile, TPM2PCRs: r.cfg.tpm2PCRs}
	for _, d := range defs {
		if d.Encrypt != encryption.Off {
			return luks.Probe(s, r.cfg.tpm2Device, mkfs.LookPath, "/sys/class/tpmrm")
		}
	}
	return encryption.Capabilities{Probed: true, Settings: s}
}
