package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNoTable is returned by ReadTable when the image has no partition table.
var ErrNoTable = errors.New("no partition table")

// Table is `sfdisk --json` output. Device and each partition's Node contain
// file names and are ignored by Diff; Entry is the GPT entry number taken
// from the node name, which is the only place sfdisk reports it.
type Table struct {
	Label      string      `json:"label"`
	ID         string      `json:"id"`
	Device     string      `json:"device"`
	Unit       string      `json:"unit"`
	FirstLBA   uint64      `json:"firstlba"`
	LastLBA    uint64      `json:"lastlba"`
	SectorSize uint64      `json:"sectorsize"`
	Partitions []Partition `json:"partitions"`
}

// Partition is one entry of Table.
type Partition struct {
	Node  string `json:"node"`
	Entry int    `json:"-"`
	Start uint64 `json:"start"`
	Size  uint64 `json:"size"`
	Type  string `json:"type"`
	UUID  string `json:"uuid"`
	Name  string `json:"name"`
	Attrs string `json:"attrs"`
}

// StartBytes and SizeBytes convert sectors to bytes.
func (p Partition) StartBytes(t *Table) int64 { return int64(p.Start * t.SectorSize) }
func (p Partition) SizeBytes(t *Table) int64  { return int64(p.Size * t.SectorSize) }

// ReadTable runs `sfdisk --json` on an image or block device.
func ReadTable(ctx context.Context, dev string) (*Table, error) {
	res, err := Run(ctx, nil, "sfdisk", "--json", dev)
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		if strings.Contains(res.Stderr, "does not contain a recognized partition table") {
			return nil, fmt.Errorf("sfdisk --json %s: %w", dev, ErrNoTable)
		}
		return nil, fmt.Errorf("sfdisk --json %s: exit %d: %s", dev, res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	return ParseTable([]byte(res.Stdout))
}

// ParseTable decodes `sfdisk --json` output. Unknown fields are an error, so
// a newer sfdisk cannot add a field that Diff silently ignores.
func ParseTable(data []byte) (*Table, error) {
	var doc struct {
		PartitionTable *Table `json:"partitiontable"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("parse sfdisk --json: %w", err)
	}
	t := doc.PartitionTable
	if t == nil {
		return nil, errors.New("parse sfdisk --json: no partitiontable object")
	}
	for i := range t.Partitions {
		p := &t.Partitions[i]
		n, err := entryNumber(t.Device, p.Node)
		if err != nil {
			return nil, err
		}
		p.Entry = n
	}
	return t, nil
}

// entryNumber extracts N from "<device>N" or "<device>pN", or from "N"
// alone (a saved dump with the file names taken out: pkg/gpt/testdata).
func entryNumber(device, node string) (int, error) {
	rest, ok := strings.CutPrefix(node, device)
	if !ok {
		if n, err := strconv.Atoi(node); err == nil && n > 0 {
			return n, nil
		}
		return 0, fmt.Errorf("partition node %q does not start with device %q", node, device)
	}
	rest = strings.TrimPrefix(rest, "p")
	n, err := strconv.Atoi(rest)
	if err != nil {
		return 0, fmt.Errorf("partition node %q: no entry number: %w", node, err)
	}
	return n, nil
}

// Diff lists every difference between want and got, ignoring the device and
// node names. An empty result means the tables are equal.
func Diff(want, got *Table) []string { return DiffExcept(want, got, nil) }

// DiffExcept is Diff without comparing the partition UUIDs of the entries
// in randomUUID (systemd-repart falls back to a random UUID when the one
// derived from the seed is taken).
func DiffExcept(want, got *Table, randomUUID map[int]bool) []string {
	var d []string
	field := func(name string, w, g any) {
		if w != g {
			d = append(d, fmt.Sprintf("%s: want %v, got %v", name, w, g))
		}
	}
	field("label", want.Label, got.Label)
	field("id", want.ID, got.ID)
	field("unit", want.Unit, got.Unit)
	field("firstlba", want.FirstLBA, got.FirstLBA)
	field("lastlba", want.LastLBA, got.LastLBA)
	field("sectorsize", want.SectorSize, got.SectorSize)
	byEntry := func(t *Table) map[int]Partition {
		m := make(map[int]Partition, len(t.Partitions))
		for _, p := range t.Partitions {
			m[p.Entry] = p
		}
		return m
	}
	w, g := byEntry(want), byEntry(got)
	for n := 1; n <= max(maxEntry(want), maxEntry(got)); n++ {
		wp, inW := w[n]
		gp, inG := g[n]
		switch {
		case inW && !inG:
			d = append(d, fmt.Sprintf("entry %d: missing (want %s)", n, wp))
		case !inW && inG:
			d = append(d, fmt.Sprintf("entry %d: unexpected %s", n, gp))
		case inW && inG:
			p := fmt.Sprintf("entry %d ", n)
			field(p+"start", wp.Start, gp.Start)
			field(p+"size", wp.Size, gp.Size)
			field(p+"type", wp.Type, gp.Type)
			if !randomUUID[n] {
				field(p+"uuid", wp.UUID, gp.UUID)
			}
			field(p+"name", strconv.Quote(wp.Name), strconv.Quote(gp.Name))
			field(p+"attrs", strconv.Quote(wp.Attrs), strconv.Quote(gp.Attrs))
		}
	}
	return d
}

func maxEntry(t *Table) int {
	n := 0
	for _, p := range t.Partitions {
		n = max(n, p.Entry)
	}
	return n
}

// String renders a partition like one line of `sfdisk --dump`.
func (p Partition) String() string {
	s := fmt.Sprintf("#%d start=%d size=%d type=%s uuid=%s name=%q", p.Entry, p.Start, p.Size, p.Type, p.UUID, p.Name)
	if p.Attrs != "" {
		s += fmt.Sprintf(" attrs=%q", p.Attrs)
	}
	return s
}

// String renders the table compactly, without file names.
func (t *Table) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "label=%s id=%s firstlba=%d lastlba=%d sectorsize=%d\n", t.Label, t.ID, t.FirstLBA, t.LastLBA, t.SectorSize)
	for _, p := range t.Partitions {
		fmt.Fprintf(&b, "  %s\n", p)
	}
	return b.String()
}

// Relocate moves a misplaced backup GPT header to the end of the device
// (sfdisk --relocate gpt-bak-std), which also raises LastUsableLBA.
func Relocate(ctx context.Context, dev string) error {
	_, err := MustSucceed(ctx, "sfdisk", "--relocate", "gpt-bak-std", dev)
	return err
}
