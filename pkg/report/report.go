// Package report renders a plan for people (a table and a layout picture
// like systemd-repart's) and for programs (JSON with systemd-repart 252's
// field names).
package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/parttype"
	"github.com/sprout-initrd/sprout/pkg/plan"
)

// Row is one partition as shown to users; the JSON keys are
// systemd-repart's, in its order, as the plan's --compat= version prints
// them.
type Row struct {
	Type  string `json:"type"`
	Label string `json:"label"`
	UUID  string `json:"uuid"`
	// PartNo is the 0-based partition number, printed from 257 on
	// (compat.JSONPartNo).
	PartNo *int `json:"partno,omitempty"`
	// File is the table's FILE column: the definition's base name, "-"
	// for a foreign partition. FileJSON is JSON's "file", which is that up
	// to 253 and the full path (null when foreign) from 254 on
	// (compat.JSONFilePath).
	File       string   `json:"-"`
	FileJSON   *string  `json:"file"`
	Node       string   `json:"node"`
	Offset     uint64   `json:"offset"`
	OldSize    uint64   `json:"old_size"`
	RawSize    uint64   `json:"raw_size"`
	OldPadding uint64   `json:"old_padding"`
	RawPadding uint64   `json:"raw_padding"`
	Activity   string   `json:"activity"`
	DropIns    []string `json:"drop-in_files,omitempty"`
}

// Rows converts the plan's partitions; node names the partition device
// for a slot number.
func Rows(p *plan.Plan, node func(index int) string) []Row {
	rows := make([]Row, 0, len(p.Partitions))
	for _, r := range p.Partitions {
		row := Row{
			Type: typeName(r), Label: displayLabel(r), UUID: r.UUID.String(), File: r.File,
			Node: node(r.Index), Offset: r.Offset, OldSize: r.OldSize, RawSize: r.NewSize,
			OldPadding: r.OldPadding, RawPadding: r.NewPadding, Activity: string(r.Activity),
		}
		row.FileJSON = &row.File
		if compat.JSONFilePath.In(p.Compat) {
			row.FileJSON = nil
			if r.Definition != nil {
				row.FileJSON = &r.Definition.Path
			}
		}
		if compat.JSONPartNo.In(p.Compat) {
			n := r.Index - 1
			row.PartNo = &n
		}
		if r.Definition != nil {
			row.DropIns = r.Definition.DropIns
		}
		rows = append(rows, row)
	}
	if compat.ListByOffset.In(p.Compat) {
		sort.SliceStable(rows, func(i, j int) bool { return rows[i].Offset < rows[j].Offset })
	}
	return rows
}

// typeName is the type's table name, or its GUID when sprout does not
// know it.
func typeName(r plan.Partition) string {
	if n := parttype.Name(r.Type); n != "" {
		return n
	}
	return r.Type.String()
}

// displayLabel shows a foreign partition without a name by its type's
// name, and an empty label (or an unknown type) as "-", as 252 does.
func displayLabel(r plan.Partition) string {
	switch {
	case r.ListedLabel != "":
		return r.ListedLabel
	case r.Label != "":
		return r.Label
	case r.Definition == nil && parttype.Name(r.Type) != "":
		return parttype.Name(r.Type)
	}
	return "-"
}

// JSON writes rows as --json=pretty or --json=short does.
func JSON(w io.Writer, rows []Row, pretty bool) error {
	b, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	if !pretty {
		_, err = fmt.Fprintln(w, string(b))
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "\t"); err != nil {
		return err
	}
	// systemd's pretty JSON puts spaces around the colon.
	s := strings.ReplaceAll(out.String(), `": `, `" : `)
	_, err = fmt.Fprintln(w, s)
	return err
}

// Table writes the human-readable plan: one line per partition with the
// size and padding as "old → new" where they change. (Every boot prints
// it, so it is put together in one byte slice without fmt.)
func Table(w io.Writer, rows []Row, legend bool) error {
	header := [7]string{"TYPE", "LABEL", "UUID", "FILE", "NODE", "SIZE", "PADDING"}
	lines := make([][7]string, 0, len(rows)+1)
	if legend {
		lines = append(lines, header)
	}
	var sumSize, sumPad uint64
	for _, r := range rows {
		lines = append(lines, [7]string{
			r.Type, r.Label, r.UUID, r.File, r.Node,
			change(r.Activity == "create", r.OldSize, r.RawSize),
			change(r.Activity == "create", r.OldPadding, r.RawPadding),
		})
		sumSize += r.RawSize
		sumPad += r.RawPadding
	}
	var widths [7]int
	for _, l := range lines {
		for i, c := range l {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	// Sized once (bytes can exceed columns: "→" and "Σ" take three).
	size := 0
	for _, w := range widths {
		size += 3*w + 1
	}
	b := make([]byte, 0, size*(len(lines)+1))
	for _, l := range lines {
		for i, c := range l {
			pad := widths[i] - utf8.RuneCountInString(c)
			if i >= 5 { // sizes are right-aligned
				b = append(spaces(b, pad), c...)
			} else {
				b = spaces(append(b, c...), pad)
			}
			if i < len(l)-1 {
				b = append(b, ' ')
			}
		}
		b = append(b, '\n')
	}
	if legend {
		b = spaces(b, widths[0]+widths[1]+widths[2]+widths[3]+widths[4]+4)
		b = append(append(append(b, " Σ = "...), plan.FormatBytes(sumSize)...), " Σ = "...)
		b = append(append(b, plan.FormatBytes(sumPad)...), '\n')
	}
	_, err := w.Write(b)
	return err
}

// spaces appends n spaces to b.
func spaces(b []byte, n int) []byte {
	for range n {
		b = append(b, ' ')
	}
	return b
}

func change(isNew bool, old, new uint64) string {
	switch {
	case isNew:
		return "→ " + plan.FormatBytes(new)
	case old != new:
		return plan.FormatBytes(old) + " → " + plan.FormatBytes(new)
	}
	return plan.FormatBytes(new)
}

// Steps writes the plan's steps, numbered, for the dry run.
func Steps(w io.Writer, p *plan.Plan) error {
	var b strings.Builder
	for i, s := range p.Steps {
		fmt.Fprintf(&b, "%2d. %s\n", i+1, s.Describe())
	}
	_, err := io.WriteString(w, b.String())
	return err
}
