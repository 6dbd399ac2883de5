package compat

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    Version
		wantErr string
	}{
		{"252", 252, ""},
		{"257", 257, ""},
		{"262", 262, ""},
		{"251", 0, "not a version sprout follows"},
		{"263", 0, "not a version sprout follows"},
		{"", 0, "not a systemd version number"},
		{"v257", 0, "not a systemd version number"},
		{"257.1", 0, "not a systemd version number"},
	} {
		got, err := Parse(c.in)
		switch {
		case c.wantErr == "" && (err != nil || got != c.want):
			t.Errorf("Parse(%q) = %v, %v; want %v", c.in, got, err, c.want)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("Parse(%q) = %v, %v; want an error with %q", c.in, got, err, c.wantErr)
		}
	}
}

func TestDefaultIsAFollowedVersion(t *testing.T) {
	if Default < Oldest || Default > Newest {
		t.Fatalf("Default %d is outside %d…%d", Default, Oldest, Newest)
	}
	if Version(0).OrDefault() != Default || Version(257).OrDefault() != 257 {
		t.Errorf("OrDefault: 0 → %d, 257 → %d", Version(0).OrDefault(), Version(257).OrDefault())
	}
}

func TestAt(t *testing.T) {
	b := ByVersion[string]{{Since: 252, Value: "a"}, {Since: 257, Value: "b"}, {Since: 260, Value: "c"}}
	for v, want := range map[Version]string{0: "c", 252: "a", 256: "a", 257: "b", 259: "b", 260: "c", 262: "c"} {
		if got := b.At(v); got != want {
			t.Errorf("At(%d) = %q, want %q", v, got, want)
		}
	}
	if got := Always(7).At(Newest); got != 7 {
		t.Errorf("Always(7).At(%d) = %d", Newest, got)
	}
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		name string
		b    ByVersion[int]
		want string
	}{
		{"always", Always(1), ""},
		{"two rows", ByVersion[int]{{252, 1}, {257, 2}}, ""},
		{"empty", nil, "no value"},
		{"starts late", ByVersion[int]{{257, 1}}, "versions before it have none"},
		{"out of order", ByVersion[int]{{252, 1}, {260, 2}, {257, 3}}, "ascending order"},
		{"same version twice", ByVersion[int]{{252, 1}, {252, 2}}, "ascending order"},
		{"after the newest", ByVersion[int]{{252, 1}, {Newest + 1, 2}}, "after the newest"},
	} {
		err := c.b.Check()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: Check() = %v, want %q", c.name, err, c.want)
		}
	}
}
