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
// encrypted partition's file system for the LUKS2 header: 16 MiB in 252,
// 32 MiB from 254 on (NEWS silent; the 252 and 254 oracles bracket it:
// 253 or 254; docs/compatibility.md luks-minimum).
var MinimumOverhead = compat.ByVersion[uint64]{{Since: 252, Value: 16 << 20}, {Since: 254, Value: 32 << 20}}

// Cipher is systemd-repart's LUKS2 cipher (luksDump of its volumes).
const Cipher = "aes-xts-plain64"

// KeyBits is the size of the volume key: 256 bits in 252, 512 from 254
// on (luksDump of the volumes 252 and 254 make with the same
// libcryptsetup; NEWS silent: 253 or 254; docs/compatibility.md
// luks-key-512).
var KeyBits = compat.ByVersion[int]{{Since: 252, Value: 256}, {Since: 254, Value: 512}}

// SectorSize is the LUKS2 volume's sector size: the disk's logical sector
// size up to 256; from 257 on the sector size its file systems get, which
// is 4096 in an image file (NEWS silent; 254 has 512, 257 4096 in image
// files: 255 to 257; docs/compatibility.md luks-sector-size).
var FileSystemSectors = compat.ByVersion[bool]{{Since: 252, Value: false}, {Since: 257, Value: true}}

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
