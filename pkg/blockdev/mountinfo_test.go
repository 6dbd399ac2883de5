package blockdev

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestMounts reads a fake mountinfo: the kernel's octal escapes are
// undone, and a line without the " - " separator is passed over.
func TestMounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mountinfo")
	data := "22 1 0:21 / /proc rw - proc proc rw\n" +
		"36 35 254:3 / /sysroot rw,noatime - ext4 /dev/vda3 rw\n" +
		"37 36 254:5 / /mnt/my\\040disk rw - xfs /dev/disk/by-label/a\\040b rw\n" +
		"garbage line\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	root := Paths{MountInfo: path}
	got, err := root.Mounts()
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{
		{DevNum: "0:21", MountPoint: "/proc", FSType: "proc", Source: "proc"},
		{DevNum: "254:3", MountPoint: "/sysroot", FSType: "ext4", Source: "/dev/vda3"},
		{DevNum: "254:5", MountPoint: "/mnt/my disk", FSType: "xfs", Source: "/dev/disk/by-label/a b"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Mounts() = %+v, want %+v", got, want)
	}
	for devNum, want := range map[string]bool{"254:3": true, "254:5": true, "254:4": false} {
		if got, err := root.Mounted(devNum); err != nil || got != want {
			t.Errorf("Mounted(%s) = %v, %v; want %v", devNum, got, err, want)
		}
	}
	if _, err := (Paths{MountInfo: filepath.Join(t.TempDir(), "none")}).Mounts(); err == nil {
		t.Error("Mounts of a missing file: no error")
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/sysroot/my\040dir\134x`); got != `/sysroot/my dir\x` {
		t.Errorf("got %q", got)
	}
}
