package report

import (
	"io"
	"math/bits"
	"sort"
	"unicode/utf8"

	"github.com/sprout-initrd/sprout/pkg/parttype"
	"github.com/sprout-initrd/sprout/pkg/plan"
)

// The layout picture systemd-repart prints after its table: a bar with one
// cell per 1/(width-2) of the disk and, below it, a tree naming each
// partition at the cell where it starts. The rules below were read off
// systemd-repart 262's output (dry runs on image files at many widths and
// layouts; docs/compatibility.md, "The layout picture"), not its source:
//
//   - The bar spans the whole disk, GPT areas included, from byte 0 to its
//     size, in Width-2 cells after one space. An area (partition or free
//     space) ends at cell floor(end × cells / disk size), so an area
//     smaller than a cell may get none; the free space at the end usually
//     keeps one (the backup GPT).
//   - Partitions are ▒, free space ░. On a terminal the partitions that
//     got at least one cell alternate green and yellow, from the left.
//   - The tree has one row per partition, in the table's order (262 sorts
//     its table by offset; Slices does too), the last partition's on top.
//     A partition's row has │ at the column of each earlier partition that
//     is named, and "└─ NAME" at its own column (1 + its first cell); "├─"
//     when an earlier partition is named at the same column. A partition
//     whose column is just right of the last named one is not named (its
//     row has only the │s): "└─" would touch that │.
//   - Rows are padded with spaces to Width-1 columns; a name running past
//     the edge is not cut.
//   - NAME is the definition's file name, else the partition's label, else
//     its type's name, else its device node.

// Slice is one partition in the picture.
type Slice struct {
	Offset, Size uint64
	Name         string
}

// PictureOptions say how to draw.
type PictureOptions struct {
	// Width is the terminal's width in columns (see Width in pkg/cli for
	// how it is chosen); below MinWidth, MinWidth is used.
	Width int
	// Color draws the bar's partitions in alternating colours (only on a
	// terminal).
	Color bool
}

// MinWidth is the narrowest picture: one cell. (systemd-repart 262 aborts
// on an assertion below it.)
const MinWidth = 3

// Slices are the plan's partitions as the picture names them, in the
// order of the disk (262's table order).
func Slices(p *plan.Plan, node func(index int) string) []Slice {
	s := make([]Slice, 0, len(p.Partitions))
	for _, r := range p.Partitions {
		name := r.Label
		switch {
		case r.Definition != nil:
			name = r.File
		case name == "":
			name = parttype.Name(r.Type)
			if name == "" {
				name = node(r.Index)
			}
		}
		s = append(s, Slice{Offset: r.Offset, Size: r.NewSize, Name: name})
	}
	sort.SliceStable(s, func(i, j int) bool { return s[i].Offset < s[j].Offset })
	return s
}

const (
	cellPartition = "▒"
	cellFree      = "░"
	colorReset    = "\x1b[0m"
)

var partitionColors = [2]string{"\x1b[0;32m", "\x1b[0;33m"}

// Picture writes the bar and the tree for a disk of diskSize bytes, framed
// by empty lines as systemd-repart does. The tree lists slices in the
// order given.
func Picture(w io.Writer, diskSize uint64, slices []Slice, opt PictureOptions) error {
	width := max(opt.Width, MinWidth)
	cells := uint64(width - 2)

	// cellAt is the cell an offset falls in: floor(offset × cells / size),
	// in 128 bits (a disk's size in bytes × thousands of columns can pass
	// 2^64).
	cellAt := func(offset uint64) uint64 {
		if diskSize == 0 {
			return 0
		}
		hi, lo := bits.Mul64(min(offset, diskSize), cells)
		q, _ := bits.Div64(hi, lo, diskSize)
		return q
	}

	// One byte slice, written at once, and no fmt: every boot draws it.
	b := append(make([]byte, 0, 4*width*(len(slices)+2)), "\n "...)
	var next uint64 // the first cell not drawn yet
	color := 0
	drawFree := func(to uint64) {
		for ; next < to; next++ {
			if opt.Color {
				b = append(b, colorReset...)
			}
			b = append(b, cellFree...)
		}
	}
	byOffset := append([]Slice(nil), slices...)
	sort.SliceStable(byOffset, func(i, j int) bool { return byOffset[i].Offset < byOffset[j].Offset })
	for _, s := range byOffset {
		start, end := cellAt(s.Offset), cellAt(s.Offset+s.Size)
		drawFree(start)
		if end <= next {
			continue // smaller than a cell: no cell, no colour used
		}
		for ; next < end; next++ {
			if opt.Color {
				b = append(b, partitionColors[color]...)
			}
			b = append(b, cellPartition...)
		}
		color ^= 1
	}
	drawFree(cells)
	if opt.Color {
		b = append(b, colorReset...)
	}
	b = append(b, '\n')

	// Which partitions the tree names, at which column.
	column := make([]int, len(slices))
	named := make([]bool, len(slices))
	last := -1 // the column of the last named partition
	for i, s := range slices {
		column[i] = 1 + int(cellAt(s.Offset))
		named[i] = last < 0 || column[i] != last+1
		if named[i] {
			last = column[i]
		}
	}
	row := make([]rune, 0, width-1)
	for i := len(slices) - 1; i >= 0; i-- {
		row = row[:0]
		for range width - 1 {
			row = append(row, ' ')
		}
		put := func(col int, s string) {
			for _, r := range s {
				for col >= len(row) {
					row = append(row, ' ')
				}
				row[col] = r
				col++
			}
		}
		shared := false // an earlier named partition has this column
		for j := 0; j < i; j++ {
			if named[j] {
				put(column[j], "│")
				shared = shared || column[j] == column[i]
			}
		}
		if named[i] {
			branch := "└─ "
			if shared {
				branch = "├─ "
			}
			put(column[i], branch+slices[i].Name)
		}
		for _, r := range row {
			b = utf8.AppendRune(b, r)
		}
		b = append(b, '\n')
	}
	b = append(b, '\n')
	_, err := w.Write(b)
	return err
}
