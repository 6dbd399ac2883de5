package repartd

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestPhysicalLines(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a", []string{"a"}},
		{"a\n", []string{"a"}},
		{"a\nb", []string{"a", "b"}},
		{"a\r\nb", []string{"a", "b"}},
		{"a\rb", []string{"a", "b"}},
		{"a\x00b", []string{"a", "b"}},
		{"a\n\rb", []string{"a", "b"}},
		{"a\r\n\x00b", []string{"a", "b"}},
		{"a\n\nb", []string{"a", "", "b"}},
		{"a\r\rb", []string{"a", "", "b"}},
		{"a\x00\x00b", []string{"a", "", "b"}},
		{"a\n\r\nb", []string{"a", "", "b"}},
		{"a\n\x00\nb", []string{"a", "", "b"}},
		{"\n", []string{""}},
	}
	for _, tt := range tests {
		if got := physicalLines([]byte(tt.in)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("physicalLines(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseUnitFile(t *testing.T) {
	type e = unitEntry
	const P = "Partition"
	tests := []struct {
		name string
		in   string
		want []unitEntry
	}{
		{"simple", "[Partition]\nType=home\n", []e{{1, P, "", ""}, {2, P, "Type", "home"}}},
		{"blanks trimmed", "  [Partition]  \n  Type  =  home  \n\tLabel\t=\ta b\t\n",
			[]e{{1, P, "", ""}, {2, P, "Type", "home"}, {3, P, "Label", "a b"}}},
		{"comments", "# c\n; c\n[Partition]\n  # indented\nType=home # not a comment\n",
			[]e{{3, P, "", ""}, {5, P, "Type", "home # not a comment"}}},
		{"quotes kept", "[Partition]\nLabel=\"a b\"\nUUID='x'\n",
			[]e{{1, P, "", ""}, {2, P, "Label", "\"a b\""}, {3, P, "UUID", "'x'"}}},
		{"empty value", "[Partition]\nLabel=\n", []e{{1, P, "", ""}, {2, P, "Label", ""}}},
		{"value with =", "[Partition]\nLabel=a=b\n", []e{{1, P, "", ""}, {2, P, "Label", "a=b"}}},
		{"continuation joins with a space", "[Partition]\nLabel=foo\\\n  bar  \nType=x\n",
			[]e{{1, P, "", ""}, {2, P, "Label", "foo   bar"}, {4, P, "Type", "x"}}},
		{"continuation over three lines", "[Partition]\nLabel=a \\\n b \\\n c\n",
			[]e{{1, P, "", ""}, {2, P, "Label", "a   b   c"}}},
		{"comment inside continuation skipped", "[Partition]\nLabel=a\\\n# c\\\n  ; c\nb\n",
			[]e{{1, P, "", ""}, {2, P, "Label", "a b"}}},
		{"empty line ends continuation", "[Partition]\nLabel=a\\\n\nType=x\n",
			[]e{{1, P, "", ""}, {2, P, "Label", "a"}, {4, P, "Type", "x"}}},
		{"blank line ends continuation", "[Partition]\nLabel=a\\\n   \nType=x\n",
			[]e{{1, P, "", ""}, {2, P, "Label", "a"}, {4, P, "Type", "x"}}},
		{"escaped backslash does not continue", "[Partition]\nLabel=x\\\\\nType=y\n",
			[]e{{1, P, "", ""}, {2, P, "Label", "x\\\\"}, {3, P, "Type", "y"}}},
		{"odd backslashes continue", "[Partition]\nLabel=x\\\\\\\nType=y\n",
			[]e{{1, P, "", ""}, {2, P, "Label", "x\\\\ Type=y"}}},
		{"backslash then blank does not continue", "[Partition]\nLabel=a\\ \nType=y\n",
			[]e{{1, P, "", ""}, {2, P, "Label", "a\\"}, {3, P, "Type", "y"}}},
		{"continuation at EOF", "[Partition]\nLabel=a\\", []e{{1, P, "", ""}, {2, P, "Label", "a"}}},
		{"continued section header text is a value", "[Partition]\nLabel=a\\\n[Partition]\n",
			[]e{{1, P, "", ""}, {2, P, "Label", "a [Partition]"}}},
		{"comment with backslash does not continue", "# c\\\n[Partition]\n", []e{{2, P, "", ""}}},
		{"key continued", "[Partition]\nFo\\\no=1\n", []e{{1, P, "", ""}, {2, P, "Fo o", "1"}}},
		{"CRLF", "[Partition]\r\nType=home\r\nLabel=x\r\n",
			[]e{{1, P, "", ""}, {2, P, "Type", "home"}, {3, P, "Label", "x"}}},
		{"CR only", "[Partition]\rType=home\r\rLabel=x",
			[]e{{1, P, "", ""}, {2, P, "Type", "home"}, {4, P, "Label", "x"}}},
		{"NUL ends a line", "[Partition]\nLabel=a\x00Label=b\n",
			[]e{{1, P, "", ""}, {2, P, "Label", "a"}, {3, P, "Label", "b"}}},
		{"BOM skipped", "\xef\xbb\xbf[Partition]\nType=home\n", []e{{1, P, "", ""}, {2, P, "Type", "home"}}},
		{"other sections reported", "[Foo]\nA=1\n[]\n[ Partition ]\n",
			[]e{{1, "Foo", "", ""}, {2, "Foo", "A", "1"}, {3, "", "", ""}, {4, " Partition ", "", ""}}},
		{"control characters kept", "[Partition]\nLabel=a\tb\x01c\n", []e{{1, P, "", ""}, {2, P, "Label", "a\tb\x01c"}}},
		{"only comments", "# nothing\n\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseUnitFile("f.conf", []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseUnitFileErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		line int
		msg  string
	}{
		{"missing =", "[Partition]\nType=home\nLabel\n", 3, "missing '='"},
		{"missing key", "[Partition]\n=foo\n", 2, "missing key name"},
		{"outside section", "Label=x\n[Partition]\n", 1, "outside of a section"},
		{"no = outside section", "Foo\n[Partition]\n", 1, "missing '='"},
		{"unterminated header", "[Partition\nType=home\n", 1, "invalid section header"},
		{"junk after header", "[Partition] # c\n", 1, "invalid section header"},
		{"lone bracket", "[\n", 1, "invalid section header"},
		{"invalid UTF-8 value", "[Partition]\nLabel=a\xffb\n", 2, "not valid UTF-8"},
		{"invalid UTF-8 header", "[Partition\xe9]\n", 1, "not valid UTF-8"},
		{"error line is the first of a continuation", "[Partition]\nLabel\\\nx\n", 2, "missing '='"},
		{"too long", "[Partition]\nLabel=" + strings.Repeat("x", 1<<20) + "\n", 2, "longer than 1 MiB"},
		{"too long continued", "[Partition]\nLabel=" + strings.Repeat("x\\\n", 1<<19) + "\n", 2, "longer than 1 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseUnitFile("dir/f.conf", []byte(tt.in))
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if se.File != "dir/f.conf" || se.Line != tt.line || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("err = %+v, want line %d and %q", se, tt.line, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "dir/f.conf:") {
				t.Errorf("message %q does not start with file:line", err)
			}
		})
	}
}

// Comments may hold any bytes: systemd skips them before checking UTF-8.
func TestCommentMayBeInvalidUTF8(t *testing.T) {
	if _, err := parseUnitFile("f", []byte("[Partition]\n# caf\xe9\n")); err != nil {
		t.Fatal(err)
	}
}
