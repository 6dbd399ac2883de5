package plan

import (
	"fmt"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/encryption"
	"github.com/sprout-initrd/sprout/pkg/fstype"
	"github.com/sprout-initrd/sprout/pkg/repartd"
)

// EncryptPartition formats the range of a future partition as a LUKS2
// volume (Encrypt=), before its entry exists; the FormatPartition step
// that follows makes the file system inside it. It carries everything the
// volume gets, so the dry run shows what the real run does.
type EncryptPartition struct {
	Index        int
	Offset, Size uint64
	Mode         encryption.Mode
	UUID         uuid.UUID // the LUKS2 UUID, derived from the partition UUID
	Label        string    // the LUKS2 label: VolumeLabel=, else the version's default (volumeLabel)
	// KeyBits and SectorSize are the volume key's size and the volume's
	// sector size of the version followed (encryption.KeyBits,
	// encryption.FileSystemSectors).
	KeyBits, SectorSize int
	encryption.Settings
}

func (s EncryptPartition) Describe() string {
	d := fmt.Sprintf("encrypt future partition %d (%s at offset %d) as LUKS2 (%s, %d-bit key), UUID %s, label %q, Encrypt=%s",
		s.Index, FormatBytes(s.Size), s.Offset, encryption.Cipher, s.KeyBits, s.UUID, s.Label, s.Mode)
	if s.Mode.UsesKeyFile() {
		key := "the empty key"
		if s.KeyFile != "" {
			key = "the key in " + s.KeyFile
		}
		d += "; key slot 0: " + key
	}
	if s.Mode.UsesTPM2() {
		slot := 0
		if s.Mode.UsesKeyFile() {
			slot = 1
		}
		dev := s.TPM2Device
		if dev == "" {
			dev = "auto"
		}
		d += fmt.Sprintf("; key slot %d: a key sealed to the TPM2 %s, bound to %s (token systemd-tpm2)", slot, dev, s.Policy())
	}
	return d
}

// encryptStep is the volume of a new partition, with the run's settings
// and its definition's KeyFile= and TPM2PCRs=, and what the version
// followed makes of it: the label, the key size, the sector size.
func (l *layout) encryptStep(m *member, row Partition, crypt encryption.Settings) EncryptPartition {
	return EncryptPartition{
		Index: m.index, Offset: m.offset, Size: m.newSize, Mode: row.Encrypt,
		UUID: row.LUKSUUID, Label: volumeLabel(m.def, row.Label, l.compat), Settings: crypt.ForPartition(m.def.KeyFile, m.def.TPM2PCRs),
		KeyBits: encryption.KeyBits.At(l.compat), SectorSize: int(l.newSectorSize()),
	}
}

// luksLabelPrefix is put before the partition label to make the LUKS2
// label of a new encrypted partition: nothing up to 258, "luks-" from 259
// on (NEWS 259: the file system and the LUKS2 volume would otherwise both
// claim /dev/disk/by-label/<label>; observed on 257 and 262).
var luksLabelPrefix = compat.ByVersion[string]{{Since: 252, Value: ""}, {Since: 259, Value: "luks-"}}

// volumeLabel is the LUKS2 label of a new encrypted partition:
// VolumeLabel= when set (259), else the prefixed partition label.
func volumeLabel(d *repartd.Definition, label string, v compat.Version) string {
	if d.VolumeLabel != nil {
		return *d.VolumeLabel
	}
	return luksLabelPrefix.At(v) + label
}

// newSectorSize is the sector size the version followed makes new LUKS2
// volumes and file systems with: the disk's, or from 257 on
// (encryption.FileSystemSectors) fsSectorSize, 4096 in an image file.
func (l *layout) newSectorSize() uint64 {
	if encryption.FileSystemSectors.At(l.compat) {
		return l.fsSectorSize
	}
	return l.sectorSize
}

// formatSectorSize is the sector size a new file system on the range is
// made for when it is not the disk's (newSectorSize); 0 otherwise, for a
// format whose tool is not told one, and inside a LUKS2 volume, whose own
// sector size decides.
func (l *layout) formatSectorSize(row Partition) int {
	sector := l.newSectorSize()
	if row.Encrypt != encryption.Off || sector == l.sectorSize {
		return 0
	}
	if f, ok := fstype.Lookup(row.Format); !ok || !f.TakesSectorSize {
		return 0
	}
	return int(sector)
}
