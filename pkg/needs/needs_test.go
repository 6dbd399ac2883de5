package needs

import (
	"reflect"
	"testing"
)

func TestPlus(t *testing.T) {
	e2fs := Package{Debian: "e2fsprogs", Fedora: "e2fsprogs", Arch: "e2fsprogs"}
	a := Set{
		Programs: []Program{{"mkfs.ext4", e2fs}, {"mke2fs", e2fs}},
		Modules:  []Module{{Name: "ext4"}},
		Files:    []string{"/etc/mke2fs.conf"},
	}
	b := Set{
		Programs:  []Program{{"mke2fs", e2fs}, {"cryptsetup", Package{Debian: "cryptsetup-bin"}}},
		Libraries: []Library{{Name: "libtss2-esys.so.0"}},
		Modules:   []Module{{Name: "dm_crypt"}, {Name: "ext4"}, {Name: "xts", Optional: true}},
	}
	got := a.Plus(b)
	want := Set{
		Programs:  []Program{{"mkfs.ext4", e2fs}, {"mke2fs", e2fs}, {"cryptsetup", Package{Debian: "cryptsetup-bin"}}},
		Libraries: []Library{{Name: "libtss2-esys.so.0"}},
		Modules:   []Module{{Name: "ext4"}, {Name: "dm_crypt"}, {Name: "xts", Optional: true}},
		Files:     []string{"/etc/mke2fs.conf"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Plus:\n got %+v\nwant %+v", got, want)
	}
	if empty := (Set{}).Plus(Set{}); !reflect.DeepEqual(empty, Set{}) {
		t.Errorf("empty Plus empty = %+v", empty)
	}
}
