package repartd

// This file reads the unit-file syntax of repart.d files. It is our own
// small reader rather than go-systemd's unit package
// (github.com/coreos/go-systemd/v22/unit) because that package cannot give
// file:line errors and reads several things differently from systemd 252.
// Checked against the installed systemd-repart 252 and go-systemd v22.7.0:
//   - it reports no line numbers, and we must name file:line in every error;
//   - a continued line keeps the backslash and a newline ("foo\\\n  bar"),
//     where systemd turns the backslash into a space ("foo   bar");
//   - a comment line inside a continuation ends the value with an error,
//     where systemd skips the comment and goes on;
//   - it silently drops assignments before the first section header, which
//     we must report;
//   - it knows only "\n" and "\r\n" line ends (systemd also "\r" and NUL);
//   - it refuses lines over 2048 bytes (systemd allows 1 MiB).
//
// The rules below are systemd's, as observed with systemd-repart 252:
//   - a UTF-8 byte order mark at the start is skipped;
//   - lines end at "\n", "\r" or NUL; a run of different end characters
//     ("\r\n", "\n\r", "\r\n\0") counts as one line end;
//   - a line whose first non-blank character is '#' or ';' is a comment,
//     also in the middle of a continued value (it neither adds text nor
//     ends the continuation);
//   - a line ending in an unescaped backslash continues on the next line;
//     the backslash becomes a space and the next line is appended as is;
//     "\\" at the end is an escaped backslash and does not continue; an
//     empty line ends a continuation;
//   - blanks (space, tab, CR, LF) around section names, keys and values are
//     dropped; quotes and backslashes inside values are kept literally;
//   - "[Name]" starts a section; a header not ending in ']' is an error;
//   - every other line must be "Key=Value" with a non-empty key, inside a
//     section, and valid UTF-8.
// Line numbers in our errors are those of the first line of an assignment
// (systemd reports the last line of a continued one).

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/sprout-initrd/sprout/pkg/sdvalue"
)

// unitEntry is a section header (Key == "") or an assignment.
type unitEntry struct {
	Line    int
	Section string
	Key     string
	Value   string
}

// maxLogicalLine mirrors systemd's limit on one (continued) line.
const maxLogicalLine = 1 << 20

const blanks = " \t\n\r"

// parseUnitFile splits data into section headers and assignments.
func parseUnitFile(path string, data []byte) ([]unitEntry, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var (
		entries   []unitEntry
		section   string
		inSection bool
		pending   strings.Builder
		start     int // line number where pending began
		continued bool
	)
	finish := func(text string, line int) error {
		text = strings.Trim(text, blanks)
		if text == "" {
			return nil
		}
		if len(text) > maxLogicalLine {
			return &Error{File: path, Line: line, Msg: "line is longer than 1 MiB"}
		}
		if !utf8.ValidString(text) {
			return &Error{File: path, Line: line, Msg: "line is not valid UTF-8"}
		}
		if text[0] == '[' {
			if text[len(text)-1] != ']' || len(text) < 2 {
				return &Error{File: path, Line: line, Msg: "invalid section header " + sdvalue.Quote(text) + " (must end with ']')"}
			}
			section, inSection = text[1:len(text)-1], true
			entries = append(entries, unitEntry{Line: line, Section: section})
			return nil
		}
		key, value, ok := strings.Cut(text, "=")
		if !ok {
			return &Error{File: path, Line: line, Msg: "missing '=' in " + sdvalue.Quote(text)}
		}
		key, value = strings.Trim(key, blanks), strings.Trim(value, blanks)
		if key == "" {
			return &Error{File: path, Line: line, Msg: "missing key name before '='"}
		}
		if !inSection {
			return &Error{File: path, Line: line, Key: key, Msg: "assignment " + sdvalue.Quote(key+"=") + " outside of a section (expected [Partition] first)"}
		}
		entries = append(entries, unitEntry{Line: line, Section: section, Key: key, Value: value})
		return nil
	}

	for n, raw := range physicalLines(data) {
		line := n + 1
		if t := strings.TrimLeft(raw, blanks); t != "" && (t[0] == '#' || t[0] == ';') {
			continue
		}
		if !continued {
			pending.Reset()
			start = line
		}
		continued = endsInUnescapedBackslash(raw)
		if continued {
			pending.WriteString(raw[:len(raw)-1])
			pending.WriteByte(' ')
			if pending.Len() > maxLogicalLine {
				return nil, &Error{File: path, Line: start, Msg: "continued line is longer than 1 MiB"}
			}
			continue
		}
		pending.WriteString(raw)
		if err := finish(pending.String(), start); err != nil {
			return nil, err
		}
	}
	if continued { // the file ended inside a continuation
		if err := finish(pending.String(), start); err != nil {
			return nil, err
		}
	}
	return entries, nil
}

// physicalLines splits data at line ends: '\n', '\r' or NUL, where a run
// of distinct end characters ("\r\n", "\n\r\0", ...) is one line end.
func physicalLines(data []byte) []string {
	var lines []string
	for len(data) > 0 {
		i := bytes.IndexAny(data, "\n\r\x00")
		if i < 0 {
			lines = append(lines, string(data))
			break
		}
		lines = append(lines, string(data[:i]))
		var seen [3]bool // '\n', '\r', NUL
		for i < len(data) {
			k := lineEndKind(data[i])
			if k < 0 || seen[k] {
				break
			}
			seen[k] = true
			i++
		}
		data = data[i:]
	}
	return lines
}

func lineEndKind(c byte) int {
	switch c {
	case '\n':
		return 0
	case '\r':
		return 1
	case 0:
		return 2
	}
	return -1
}

// endsInUnescapedBackslash reports whether s ends in a backslash that is
// not itself escaped by a preceding one.
func endsInUnescapedBackslash(s string) bool {
	escaped := false
	for i := 0; i < len(s); i++ {
		if escaped {
			escaped = false
		} else if s[i] == '\\' {
			escaped = true
		}
	}
	return escaped
}
