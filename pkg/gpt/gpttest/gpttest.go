// Package gpttest crafts GPT disk images for tests: the seed article's
// factory image, and tables that go-diskfs, and so gpt.Encode, cannot
// create (entry arrays of other than 128 entries, any first usable LBA).
// It writes the bytes itself, independently of pkg/gpt, which the tests
// then read with gpt.Read. Only tests import it; the binary's one GPT
// encoder is go-diskfs's (docs/gpt.md).
package gpttest

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf16"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/parttype"
)

// Layout is a GPT to craft: the header fields and the used slots. The
// disk it is made for ends at BackupLBA.
type Layout struct {
	SectorSize     int
	DiskGUID       uuid.UUID
	FirstUsableLBA uint64
	LastUsableLBA  uint64
	BackupLBA      uint64
	EntryCount     uint32 // 128 when zero
	EntriesLBA     uint64 // of the primary array; 2 when zero
	Entries        []Entry
}

// Entry is one used slot, with the fields of gpt.Entry (so a gpt.Entry
// converts to it).
type Entry struct {
	Index      int
	Type       uuid.UUID
	UUID       uuid.UUID
	FirstLBA   uint64
	LastLBA    uint64
	Attributes uint64
	Name       string
}

// Write stores l on w as libfdisk would: a protective MBR (bytes 446..511
// of LBA 0), both entry arrays and both headers, with correct CRCs. It
// writes nothing else.
func Write(w io.WriterAt, l Layout) error {
	ss := int64(l.SectorSize)
	count := l.EntryCount
	if count == 0 {
		count = 128
	}
	entriesLBA := l.EntriesLBA
	if entriesLBA == 0 {
		entriesLBA = 2
	}
	array := make([]byte, int(count)*128)
	for _, e := range l.Entries {
		b := array[(e.Index-1)*128 : e.Index*128]
		putGUID(b[0:16], e.Type)
		putGUID(b[16:32], e.UUID)
		binary.LittleEndian.PutUint64(b[32:40], e.FirstLBA)
		binary.LittleEndian.PutUint64(b[40:48], e.LastLBA)
		binary.LittleEndian.PutUint64(b[48:56], e.Attributes)
		for i, u := range utf16.Encode([]rune(e.Name)) {
			binary.LittleEndian.PutUint16(b[56+2*i:], u)
		}
	}
	backupArrayLBA := l.BackupLBA - uint64(len(array))/uint64(ss)
	header := func(my, alternate, entries uint64) []byte {
		h := make([]byte, ss)
		copy(h, "EFI PART")
		binary.LittleEndian.PutUint32(h[8:], 0x00010000)
		binary.LittleEndian.PutUint32(h[12:], 92)
		binary.LittleEndian.PutUint64(h[24:], my)
		binary.LittleEndian.PutUint64(h[32:], alternate)
		binary.LittleEndian.PutUint64(h[40:], l.FirstUsableLBA)
		binary.LittleEndian.PutUint64(h[48:], l.LastUsableLBA)
		putGUID(h[56:72], l.DiskGUID)
		binary.LittleEndian.PutUint64(h[72:], entries)
		binary.LittleEndian.PutUint32(h[80:], count)
		binary.LittleEndian.PutUint32(h[84:], 128)
		binary.LittleEndian.PutUint32(h[88:], crc32.ChecksumIEEE(array))
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
		return h
	}
	pmbr := make([]byte, 66)
	copy(pmbr, []byte{0x00, 0x00, 0x02, 0x00, 0xEE, 0xFF, 0xFF, 0xFF, 1, 0, 0, 0})
	binary.LittleEndian.PutUint32(pmbr[12:], uint32(min(l.BackupLBA, math.MaxUint32)))
	pmbr[64], pmbr[65] = 0x55, 0xAA
	for _, r := range []struct {
		off  int64
		data []byte
	}{
		{446, pmbr},
		{int64(entriesLBA) * ss, array},
		{ss, header(1, l.BackupLBA, entriesLBA)},
		{int64(backupArrayLBA) * ss, array},
		{int64(l.BackupLBA) * ss, header(l.BackupLBA, 1, backupArrayLBA)},
	} {
		if _, err := w.WriteAt(r.data, r.off); err != nil {
			return err
		}
	}
	return nil
}

// putGUID stores u in the GPT's mixed-endian layout (first three fields
// little-endian).
func putGUID(b []byte, u uuid.UUID) {
	copy(b, u[:])
	b[0], b[1], b[2], b[3] = u[3], u[2], u[1], u[0]
	b[4], b[5] = u[5], u[4]
	b[6], b[7] = u[7], u[6]
}

// StoreOffset is the byte offset of the seed image's store partition.
const StoreOffset = 43008 * 512

// SeedImage writes the seed article's factory image in a new temporary
// file: a GPT for a disk of built bytes (512-byte sectors, laid out as
// libfdisk lays out a new table) with an ESP ("boot", 20 MiB) and a store
// partition ("nix-store", 32 MiB). The file is then grown to disk bytes,
// like an image dd'ed onto a bigger disk, and its path returned.
func SeedImage(t testing.TB, built, disk int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	esp, _ := parttype.Lookup("esp")
	store, _ := parttype.Lookup("linux-generic")
	last := uint64(built/512) - 1
	l := Layout{
		SectorSize: 512, DiskGUID: uuid.MustParse("6913f4b6-6690-4a57-a202-f1b53c56dbdf"),
		FirstUsableLBA: 2048, LastUsableLBA: last - 33, BackupLBA: last,
		Entries: []Entry{
			{Index: 1, Type: esp, UUID: uuid.MustParse("b2d552b0-45db-4678-b34f-066168609d1a"), Name: "boot", FirstLBA: 2048, LastLBA: 2048 + 40960 - 1},
			{Index: 2, Type: store, UUID: uuid.MustParse("3ed50935-b785-4a2a-879d-dd4c00395d47"), Name: "nix-store", FirstLBA: StoreOffset / 512, LastLBA: StoreOffset/512 + 65536 - 1},
		},
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Write(f, l); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(disk); err != nil {
		t.Fatal(err)
	}
	return path
}
