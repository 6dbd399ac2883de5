package blockdev

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// fakeSysfs builds a sysfs with one disk "cciss!c0d0" (DEVNAME cciss/c0d0,
// 4096-byte sectors) holding partitions 1 and 2, and returns its Paths.
func fakeSysfs(t *testing.T) Paths {
	t.Helper()
	top := t.TempDir()
	root := Paths{
		SysBlock:    filepath.Join(top, "sys/class/block"),
		SysDevBlock: filepath.Join(top, "sys/dev/block"),
		Dev:         filepath.Join(top, "dev"),
	}
	disk := filepath.Join(top, "sys/devices/pci0000:00/block/cciss!c0d0")
	write := func(path, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, name); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(disk, "dev"), "104:0\n")
	write(filepath.Join(disk, "size"), "2097152\n")
	write(filepath.Join(disk, "uevent"), "MAJOR=104\nMINOR=0\nDEVNAME=cciss/c0d0\nDEVTYPE=disk\n")
	write(filepath.Join(disk, "queue/logical_block_size"), "4096\n")
	link(disk, filepath.Join(root.SysBlock, "cciss!c0d0"))
	link(disk, filepath.Join(root.SysDevBlock, "104:0"))
	for _, p := range []struct{ n, start, size string }{{"2", "526336", "1048576"}, {"1", "2048", "524288"}} {
		dir := filepath.Join(disk, "cciss!c0d0p"+p.n)
		write(filepath.Join(dir, "partition"), p.n+"\n")
		write(filepath.Join(dir, "start"), p.start+"\n")
		write(filepath.Join(dir, "size"), p.size+"\n")
		write(filepath.Join(dir, "dev"), "104:"+p.n+"\n")
		write(filepath.Join(dir, "uevent"), "DEVNAME=cciss/c0d0p"+p.n+"\n")
		link(dir, filepath.Join(root.SysBlock, "cciss!c0d0p"+p.n))
	}
	return root
}

func TestPartitionsOnFakeSysfs(t *testing.T) {
	root := fakeSysfs(t)
	got, err := root.Partitions("104:0")
	if err != nil {
		t.Fatal(err)
	}
	want := []KernelPartition{
		{Number: 1, Start: 2048 * 512, Size: 524288 * 512, Node: filepath.Join(root.Dev, "cciss/c0d0p1")},
		{Number: 2, Start: 526336 * 512, Size: 1048576 * 512, Node: filepath.Join(root.Dev, "cciss/c0d0p2")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Partitions = %+v, want %+v", got, want)
	}
	if _, err := root.Partitions("104:16"); err == nil {
		t.Error("Partitions of an unknown device: no error")
	}
}

func TestBlockDevicesOnFakeSysfs(t *testing.T) {
	root := fakeSysfs(t)
	got, err := root.BlockDevices()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range got {
		names = append(names, d.Name)
	}
	if want := []string{"cciss!c0d0", "cciss!c0d0p1", "cciss!c0d0p2"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("names = %v, want %v", names, want)
	}
	disk, p2 := got[0], got[2]
	wantDisk := BlockDevice{Name: "cciss!c0d0", Node: filepath.Join(root.Dev, "cciss/c0d0"), DevNum: "104:0", Size: 2097152 * 512, SectorSize: 4096}
	if !reflect.DeepEqual(*disk, wantDisk) {
		t.Errorf("disk = %+v, want %+v", *disk, wantDisk)
	}
	// A partition takes its disk's logical sector size.
	wantP2 := BlockDevice{Name: "cciss!c0d0p2", Node: filepath.Join(root.Dev, "cciss/c0d0p2"), DevNum: "104:2", Partition: 2, Parent: "cciss!c0d0", Size: 1048576 * 512, SectorSize: 4096}
	if !reflect.DeepEqual(*p2, wantP2) {
		t.Errorf("partition 2 = %+v, want %+v", *p2, wantP2)
	}
}
