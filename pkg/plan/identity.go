package plan

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/parttype"
	"github.com/sprout-initrd/sprout/pkg/repartd"
)

// GPT attribute bits that definitions control (the Discoverable
// Partitions Specification's meaning of the type-specific bits 48–63).
const (
	AttrGrowFileSystem = uint64(1) << 59
	AttrReadOnly       = uint64(1) << 60
	AttrNoAuto         = uint64(1) << 63
)

// DeriveUUID returns HMAC-SHA256(key, msg) cut to 16 bytes and marked as a
// random (v4, RFC 4122 variant) UUID — how systemd-repart makes UUIDs that
// are stable for a given seed.
func DeriveUUID(key uuid.UUID, msg []byte) uuid.UUID {
	mac := hmac.New(sha256.New, key[:])
	mac.Write(msg)
	var u uuid.UUID
	copy(u[:], mac.Sum(nil))
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// DiskGUID is the GUID of a partition table created from scratch.
func DiskGUID(seed uuid.UUID) uuid.UUID {
	return DeriveUUID(seed, []byte("disk-uuid"))
}

// PartitionUUID is the UUID of the k-th partition of a type in the
// partition list (k counts earlier list members of the same type).
func PartitionUUID(seed, typ uuid.UUID, k uint64) uuid.UUID {
	msg := append([]byte(nil), typ[:]...)
	if k > 0 {
		msg = binary.LittleEndian.AppendUint64(msg, k)
	}
	return DeriveUUID(seed, msg)
}

// FileSystemUUID is the UUID of the file system made in a new partition.
func FileSystemUUID(partition uuid.UUID) uuid.UUID {
	return DeriveUUID(partition, []byte("file-system-uuid"))
}

// LUKSUUID is the UUID of the LUKS2 volume of a new encrypted partition.
func LUKSUUID(partition uuid.UUID) uuid.UUID {
	return DeriveUUID(partition, []byte("luks-uuid"))
}

// identities decides UUID and label of every member in list order, as
// 252 does: existing non-zero UUIDs and non-empty labels are never
// changed; an explicit UUID=/Label= is used as given; otherwise the UUID
// is derived from the seed and the label is the type's name made unique
// against earlier members ("home", "home-2", …). Dropped members take
// part: they still count for k and still claim their label.
func identities(members []*member, seed uuid.UUID, random func() uuid.UUID) (uuids []uuid.UUID, labels []string, notices []string) {
	uuids = make([]uuid.UUID, len(members))
	labels = make([]string, len(members))
	for i, m := range members {
		if m.foreign() {
			uuids[i], labels[i] = m.entry.UUID, m.entry.Name
			continue
		}
		switch {
		case m.exists && m.entry.UUID != uuid.Nil:
			uuids[i] = m.entry.UUID
		case m.def.UUID != nil:
			uuids[i] = *m.def.UUID
		default:
			uuids[i] = derivedUUID(members, uuids, i, seed)
			if usedElsewhere(members, uuids, i) {
				uuids[i] = random()
				notices = append(notices, fmt.Sprintf("Partition UUID derived from the seed for %s is already in use, using a random one.", m.def.File))
			}
		}
		switch {
		case m.exists && m.entry.Name != "":
			labels[i] = m.entry.Name
		case m.def.Label != nil:
			labels[i] = *m.def.Label
		default:
			labels[i] = uniqueLabel(members, labels, i)
		}
	}
	return uuids, labels, notices
}

// checkExplicitUUIDs refuses a UUID= that another partition on the disk
// already has. 252 writes the duplicate; then /dev/disk/by-partuuid and
// root=PARTUUID= may name either partition. (repartd.Load already refuses
// two definitions with one UUID=.)
func checkExplicitUUIDs(members []*member, uuids []uuid.UUID) error {
	for i, m := range members {
		if m.foreign() || m.def.UUID == nil || *m.def.UUID == uuid.Nil || m.exists && m.entry.UUID != uuid.Nil {
			continue // no UUID= in play, or the partition keeps the UUID it has
		}
		for j, o := range members {
			if j != i && o.exists && uuids[j] == uuids[i] {
				return fmt.Errorf("%s: UUID=%s is already used by partition %d on the disk; partition UUIDs must be unique",
					m.def.Where("UUID"), uuids[i], o.index)
			}
		}
	}
	return nil
}

func derivedUUID(members []*member, uuids []uuid.UUID, i int, seed uuid.UUID) uuid.UUID {
	var k uint64
	for _, q := range members[:i] {
		if q.typ == members[i].typ {
			k++
		}
	}
	return PartitionUUID(seed, members[i].typ, k)
}

func usedElsewhere(members []*member, uuids []uuid.UUID, i int) bool {
	for j, q := range members {
		if j == i {
			continue
		}
		if q.exists && q.entry.UUID == uuids[i] || uuids[j] == uuids[i] {
			return true
		}
	}
	return false
}

// TypeLabel is the default label of a partition type: its name in the
// type table, or "linux" for a type sprout does not know.
func TypeLabel(typ uuid.UUID) string {
	if n := parttype.Name(typ); n != "" {
		return n
	}
	return "linux"
}

func uniqueLabel(members []*member, labels []string, i int) string {
	prefix := TypeLabel(members[i].typ)
	label := prefix
	for n := 2; labelTaken(members[:i], labels, label); n++ {
		label = fmt.Sprintf("%s-%d", prefix, n)
	}
	return label
}

func labelTaken(earlier []*member, labels []string, label string) bool {
	for j, q := range earlier {
		if labels[j] == label || q.exists && q.entry.Name == label {
			return true
		}
	}
	return false
}

// newAttributes computes the GPT attribute bits of a new partition.
//
// Two deliberate differences from 252, because 252 silently does not do
// what the definition says (docs/compatibility.md): GrowFileSystem=no
// clears bit 59 (252 sets it anyway), and Flags= bits below 48 are
// written (252 then drops every attribute, systemd#35591).
func newAttributes(d *repartd.Definition, typ uuid.UUID) uint64 {
	var attrs uint64
	if d.Flags != nil {
		attrs = *d.Flags
	}
	setBit := func(bit uint64, on bool) {
		if on {
			attrs |= bit
		} else {
			attrs &^= bit
		}
	}
	if d.NoAuto.Set() && parttype.SupportsNoAuto(typ) {
		setBit(AttrNoAuto, d.NoAuto == repartd.TriYes)
	}
	readOnly := d.ReadOnly
	if !readOnly.Set() && parttype.IsVerity(typ) {
		readOnly = repartd.TriYes
	}
	if readOnly.Set() && parttype.SupportsReadOnly(typ) {
		setBit(AttrReadOnly, readOnly == repartd.TriYes)
	}
	if parttype.SupportsGrowFS(typ) {
		switch {
		case d.GrowFileSystem.Set():
			setBit(AttrGrowFileSystem, d.GrowFileSystem == repartd.TriYes)
		case readOnly != repartd.TriYes:
			setBit(AttrGrowFileSystem, true)
		}
	}
	return attrs
}
