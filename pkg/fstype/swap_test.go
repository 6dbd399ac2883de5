package fstype

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func TestSwapHeader(t *testing.T) {
	f, _ := Lookup("swap")
	req := request("swap")
	req.Label = "swap label that is long"
	page, err := f.Header(req, 40960, 4096)
	if err != nil {
		t.Fatal(err)
	}
	// Version 1, last page 9, no bad pages, the UUID, the label cut to 15
	// bytes and NUL-padded; the magic ends the page.
	if got, want := hex.EncodeToString(page[1024:1070]), "010000000900000000000000262afe25c985400286e6146a18a7febd73776170206c6162656c2074686174000000"; got != want {
		t.Errorf("header fields:\n got %s\nwant %s", got, want)
	}
	if len(page) != 4096 || string(page[4086:]) != "SWAPSPACE2" || !bytes.Equal(page[:1024], make([]byte, 1024)) {
		t.Errorf("page of %d bytes ends in %q", len(page), page[4086:])
	}
	if got, ok := Identify(bytes.NewReader(page)); !ok || got != (Identity{"swap", "swap label that", req.UUID.String()}) {
		t.Errorf("Identify(the header) = %+v, %v", got, ok)
	}
	if _, err := f.Header(req, 36864, 4096); err == nil {
		t.Error("a 9-page swap area was accepted")
	}
	if f.Args != nil || f.Program != "" || len(f.Needs().Programs) != 0 {
		t.Error("swap needs a program")
	}
}
