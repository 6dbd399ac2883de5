package encryption

import (
	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/needs"
)

// MetadataSize is the room the LUKS2 header and key slots take at the
// start of the volume: the data start cryptsetup gives a LUKS2 volume by
// default. The file system inside is that much smaller than the partition.
const MetadataSize = 16 << 20

// MinimumOverhead is what systemd-repart adds to the minimum size of an
// encrypted partition's file system for the LUKS2 header
// (LUKS2_METADATA_SIZE; 252's value. 253 raised it to 32 MiB, a row the
// versions after 252 add).
var MinimumOverhead = compat.ByVersion[uint64]{{Since: 252, Value: 16 << 20}}

// Cipher and KeyBits are 252's LUKS2 parameters (luksDump of its
// volumes: aes-xts-plain64, a 256-bit volume key).
const (
	Cipher  = "aes-xts-plain64"
	KeyBits = 256
)

// Programs sprout runs for encryption.
const (
	Cryptsetup  = "cryptsetup"
	Cryptenroll = "systemd-cryptenroll"
)

// luks2Needs is what every mode needs: cryptsetup makes and opens the
// volume, through dm-crypt and the kernel ciphers of 252's parameters
// (aes-xts-plain64, with sha256 for the key slots), which cryptsetup
// checks through the AF_ALG interfaces.
var luks2Needs = needs.Set{
	Programs: []needs.Program{
		{Name: Cryptsetup, Package: needs.Package{Debian: "cryptsetup-bin", Fedora: "cryptsetup", Arch: "cryptsetup", Nixpkgs: "cryptsetup"}},
	},
	Modules: []needs.Module{
		{Name: "dm_mod"}, {Name: "dm_crypt"},
		{Name: "xts", Optional: true}, {Name: "aesni_intel", Optional: true},
		{Name: "aes_generic", Optional: true}, {Name: "sha256_generic", Optional: true},
		{Name: "algif_skcipher", Optional: true}, {Name: "algif_hash", Optional: true},
	},
}
