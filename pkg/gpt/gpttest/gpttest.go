// Package gpttest builds GPT image files for the tests of other packages.
package gpttest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/gpt"
	"github.com/sprout-initrd/sprout/pkg/parttype"
)

// StoreOffset is the byte offset of the seed image's store partition.
const StoreOffset = 43008 * 512

// SeedImage writes the seed article's factory image in a new temporary
// file: a GPT for a disk of built bytes (512-byte sectors) with an ESP
// ("boot", 20 MiB) and a store partition ("nix-store", 32 MiB). The file is
// then grown to disk bytes, like an image dd'ed onto a bigger disk, and its
// path returned.
func SeedImage(t testing.TB, built, disk int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	tb := gpt.New(built, 512, uuid.MustParse("6913f4b6-6690-4a57-a202-f1b53c56dbdf"))
	esp, _ := parttype.Lookup("esp")
	store, _ := parttype.Lookup("linux-generic")
	tb.Entries = []gpt.Entry{
		{Index: 1, Type: esp, UUID: uuid.MustParse("b2d552b0-45db-4678-b34f-066168609d1a"), Name: "boot", FirstLBA: 2048, LastLBA: 2048 + 40960 - 1},
		{Index: 2, Type: store, UUID: uuid.MustParse("3ed50935-b785-4a2a-879d-dd4c00395d47"), Name: "nix-store", FirstLBA: StoreOffset / 512, LastLBA: StoreOffset/512 + 65536 - 1},
	}
	writes, err := tb.Encode(built)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, w := range writes {
		if _, err := f.WriteAt(w.Data, w.Offset); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(disk); err != nil {
		t.Fatal(err)
	}
	return path
}
