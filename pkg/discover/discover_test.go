package discover

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
)

const gib = 1 << 30

var (
	espUUID   = uuid.MustParse("5eed0001-0000-4000-8000-000000000001")
	storeUUID = uuid.MustParse("5eed0002-0000-4000-8000-000000000002")
	rootUUID  = uuid.MustParse("5eed0003-0000-4000-8000-000000000003")
	dataUUID  = uuid.MustParse("d47a0001-0000-4000-8000-000000000001")
	rootFSID  = uuid.MustParse("6a4c1b7e-5f0e-4b43-9a53-1c1e6f0c0a01")
)

// appliance adds the seed appliance disk (boot, store, root) as name.
func appliance(f *fakeSystem, name string, sectorSize int) []string {
	return f.addDisk(name, 11*gib, sectorSize, []part{
		{name: "boot", uuid: espUUID, fs: fat16("BOOT", 0x5EED0001)},
		{name: "store", uuid: storeUUID},
		{name: "root", uuid: rootUUID, fs: ext4("root", rootFSID)},
	})
}

// dataDisk adds a second disk that must never be chosen by accident.
func dataDisk(f *fakeSystem, name string) []string {
	return f.addDisk(name, 2*gib, 512, []part{{name: "data", uuid: dataUUID, fs: ext4("data", uuid.New())}})
}

func dev(f *fakeSystem, name string) string { return filepath.Join(f.env.Dev, name) }

func TestFindChoosesTheNamedDisk(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(f *fakeSystem)
		want   string
		method string // the tried line that decided
	}{
		{"root=PARTLABEL", func(f *fakeSystem) {
			appliance(f, "vda", 512)
			dataDisk(f, "vdb")
			f.cmdline("console=ttyS0 root=PARTLABEL=root ro")
		}, "vda", "root=: PARTLABEL=root is "},
		{"root=PARTUUID in upper case with PARTNROFF", func(f *fakeSystem) {
			dataDisk(f, "vda")
			appliance(f, "vdb", 512)
			f.cmdline("root=PARTUUID=5EED0001-0000-4000-8000-000000000001/PARTNROFF=2")
		}, "vdb", "root=: PARTUUID="},
		{"NVMe partition names", func(f *fakeSystem) {
			appliance(f, "nvme0n1", 512)
			f.cmdline("root=PARTLABEL=root")
		}, "nvme0n1", "nvme0n1p3 on the disk"},
		{"4096-byte sectors", func(f *fakeSystem) {
			appliance(f, "vda", 4096)
			f.cmdline("root=PARTUUID=5eed0003-0000-4000-8000-000000000003")
		}, "vda", "root=: PARTUUID="},
		{"the last root= wins", func(f *fakeSystem) {
			appliance(f, "vda", 512)
			dataDisk(f, "vdb")
			f.cmdline("root=PARTLABEL=data root=PARTLABEL=root")
		}, "vda", "root=: PARTLABEL=root"},
		{"quoted value", func(f *fakeSystem) {
			f.addDisk("vda", gib, 512, []part{{name: "my root", uuid: uuid.New()}})
			f.cmdline(`root="PARTLABEL=my root" ro`)
		}, "vda", "root=: PARTLABEL=my root"},
		{"sprout.device= beats root=", func(f *fakeSystem) {
			appliance(f, "vda", 512)
			dataDisk(f, "vdb")
			f.cmdline("root=PARTLABEL=root sprout.device=/dev/vdb")
		}, "vdb", "sprout.device=: /dev/vdb is the disk"},
		{"sprout.device= a partition path", func(f *fakeSystem) {
			appliance(f, "vda", 512)
			f.cmdline("sprout.device=/dev/vda2")
		}, "vda", "sprout.device=: /dev/vda2 is on the disk /dev/vda (via /dev/vda2)"},
		{"sprout.device= a by-id link", func(f *fakeSystem) {
			appliance(f, "vda", 512)
			dataDisk(f, "vdb")
			f.symlink("../../vdb", "dev/disk/by-id/virtio-data")
			f.cmdline("root=PARTLABEL=root sprout.device=/dev/disk/by-id/virtio-data")
		}, "vdb", "sprout.device=: /dev/disk/by-id/virtio-data"},
		{"sprout.device=PARTLABEL", func(f *fakeSystem) {
			appliance(f, "sda", 512)
			dataDisk(f, "sdb")
			f.cmdline("sprout.device=PARTLABEL=boot")
		}, "sda", "sprout.device=: PARTLABEL=boot"},
		{"sprout.device=LABEL of a FAT file system", func(f *fakeSystem) {
			dataDisk(f, "vda")
			appliance(f, "vdb", 512)
			f.cmdline("sprout.device=LABEL=BOOT")
		}, "vdb", "LABEL=BOOT is "},
		{"sprout.device=UUID of an ext4 file system", func(f *fakeSystem) {
			dataDisk(f, "vda")
			appliance(f, "vdb", 512)
			f.cmdline("sprout.device=UUID=" + strings.ToUpper(rootFSID.String()))
		}, "vdb", "vdb3 on the disk"},
		{"LoaderDevicePartUUID beats root=", func(f *fakeSystem) {
			dataDisk(f, "vda")
			appliance(f, "vdb", 512)
			f.efiVar(strings.ToUpper(espUUID.String()))
			f.cmdline("root=PARTLABEL=data")
		}, "vdb", "EFI variable LoaderDevicePartUUID: PARTUUID=5eed0001"},
		{"mount.usr= when root is tmpfs", func(f *fakeSystem) {
			dataDisk(f, "vda")
			f.addDisk("vdb", gib, 512, []part{{name: "usr", uuid: uuid.New()}})
			f.cmdline("root=tmpfs mount.usr=PARTLABEL=usr")
		}, "vdb", "mount.usr=: PARTLABEL=usr"},
		{"the mount of /sysroot", func(f *fakeSystem) {
			dataDisk(f, "vda")
			nums := appliance(f, "vdb", 512)
			f.mount("40 22 " + nums[3] + " / /sysroot ro - ext4 /dev/vdb3 ro")
		}, "vdb", "mount /sysroot: mounted from"},
		{"/sysusr/usr before /sysroot", func(f *fakeSystem) {
			root := appliance(f, "vda", 512)
			usr := f.addDisk("vdb", gib, 512, []part{{name: "usr", uuid: uuid.New()}})
			f.mount("40 22 " + root[3] + " / /sysroot ro - ext4 /dev/vda3 ro")
			f.mount("41 22 " + usr[1] + " / /sysusr/usr ro - ext4 /dev/vdb1 ro")
		}, "vdb", "mount /sysusr/usr"},
		{"dm-verity root on a partition", func(f *fakeSystem) {
			appliance(f, "vda", 512)
			num := f.addDM("dm-0", "vda3")
			f.mount("40 22 " + num + " / /sysroot ro - ext4 /dev/mapper/root ro")
		}, "vda", "is on the disk /dev/vda (via /dev/dm-0 → /dev/vda3)"},
		{"btrfs mount: the source path decides", func(f *fakeSystem) {
			appliance(f, "vda", 512)
			f.mount("40 22 0:45 / /sysroot ro - btrfs /dev/vda3 ro")
		}, "vda", "mount /sysroot: /dev/vda3 is "},
		{"a partition the kernel has not added", func(f *fakeSystem) {
			f.addDisk("vda", gib, 512, []part{{name: "boot", uuid: uuid.New()}, {name: "root", uuid: uuid.New(), noDev: true}})
			f.cmdline("sprout.device=PARTLABEL=root")
		}, "vda", "vda2 on the disk /dev/vda"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			tt.setup(f)
			disk, tried, err := Find(f.env)
			if err != nil {
				t.Fatalf("Find: %v", err)
			}
			if want := dev(f, tt.want); disk != want {
				t.Errorf("disk = %s, want %s\ntried:\n%s", disk, want, strings.Join(tried, "\n"))
			}
			last := strings.ReplaceAll(tried[len(tried)-1], f.env.Dev, "/dev")
			if !strings.Contains(last, tt.method) {
				t.Errorf("deciding line %q does not contain %q", last, tt.method)
			}
		})
	}
}

func TestFindRefusesToGuess(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(f *fakeSystem)
		sentinel error
		mention  []string // the error must name these
	}{
		{"nothing names a disk", func(f *fakeSystem) {
			appliance(f, "vda", 512)
		}, ErrNotFound, []string{"sprout.device=: not on the kernel command line",
			"LoaderDevicePartUUID: not set", "root=: not on the kernel command line",
			"mount /sysroot: not mounted", "sprout.device= on the kernel command line"}},
		{"two disks carry PARTLABEL=root", func(f *fakeSystem) {
			appliance(f, "vda", 512)
			appliance(f, "vdb", 512)
			f.cmdline("root=PARTLABEL=root")
		}, ErrAmbiguous, []string{"/dev/vda (", "/dev/vdb ("}},
		{"two file systems labelled BOOT", func(f *fakeSystem) {
			appliance(f, "vda", 512)
			appliance(f, "sda", 512)
			f.cmdline("sprout.device=LABEL=BOOT")
		}, ErrAmbiguous, []string{"/dev/sda (", "/dev/vda ("}},
		{"udev's link disagrees with the GPTs", func(f *fakeSystem) {
			appliance(f, "vda", 512)
			dataDisk(f, "vdb")
			f.symlink("../../vdb1", "dev/disk/by-partlabel/root")
			f.cmdline("root=PARTLABEL=root")
		}, ErrAmbiguous, []string{"/dev/vda (", "/dev/vdb (/dev/vdb1)"}},
		{"sprout.device= names nothing: no fallback to root=", func(f *fakeSystem) {
			appliance(f, "vda", 512)
			f.cmdline("root=PARTLABEL=root sprout.device=PARTLABEL=nope")
		}, ErrNotFound, []string{"no device has PARTLABEL=nope", "scanned vda"}},
		{"root= names a partition that does not exist yet", func(f *fakeSystem) {
			appliance(f, "vda", 512)
			f.cmdline("root=PARTLABEL=newroot")
		}, ErrNotFound, []string{"root=: no device has PARTLABEL=newroot"}},
		{"LoaderDevicePartUUID names no partition: no fallback", func(f *fakeSystem) {
			appliance(f, "vda", 512)
			f.efiVar("11111111-2222-4333-8444-555555555555")
			f.cmdline("root=PARTLABEL=root")
		}, ErrNotFound, []string{"PARTUUID=11111111-2222-4333-8444-555555555555"}},
		{"a root built on two disks", func(f *fakeSystem) {
			appliance(f, "vda", 512)
			dataDisk(f, "vdb")
			num := f.addDM("dm-0", "vda3", "vdb1")
			f.mount("40 22 " + num + " / /sysroot ro - ext4 /dev/mapper/root ro")
		}, ErrAmbiguous, []string{"built on 2 devices"}},
		{"root on tmpfs and nothing else", func(f *fakeSystem) {
			appliance(f, "vda", 512)
			f.cmdline("root=tmpfs")
			f.mount("40 22 0:33 / /sysroot rw - tmpfs tmpfs rw")
		}, ErrNotFound, []string{`"tmpfs" names no block device`, "mounted from tmpfs (tmpfs), not a block device"}},
		{"a path that is not a block device", func(f *fakeSystem) {
			appliance(f, "vda", 512)
			f.cmdline("sprout.device=/dev/sdz")
		}, ErrNotFound, []string{"/dev/sdz"}},
		{"a value that is no device spec", func(f *fakeSystem) {
			appliance(f, "vda", 512)
			f.cmdline("sprout.device=vda")
		}, ErrNotFound, []string{"is not a device"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			tt.setup(f)
			disk, tried, err := Find(f.env)
			if err == nil {
				t.Fatalf("Find chose %s, want an error; tried:\n%s", disk, strings.Join(tried, "\n"))
			}
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("error %v does not wrap %v", err, tt.sentinel)
			}
			msg := strings.ReplaceAll(err.Error(), f.env.Dev, "/dev")
			for _, m := range tt.mention {
				if !strings.Contains(msg, m) {
					t.Errorf("error does not mention %q:\n%s", m, msg)
				}
			}
			if len(tried) == 0 {
				t.Error("no tried lines")
			}
		})
	}
}

func TestFindReportsEveryMethodBeforeTheDecidingOne(t *testing.T) {
	f := newFake(t)
	appliance(f, "vda", 512)
	f.cmdline("root=PARTLABEL=root")
	_, tried, err := Find(f.env)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"sprout.device=: ", "EFI variable LoaderDevicePartUUID: ", "root=: "}
	if len(tried) != len(want) {
		t.Fatalf("tried = %q", tried)
	}
	for i, w := range want {
		if !strings.HasPrefix(tried[i], w) {
			t.Errorf("tried[%d] = %q, want prefix %q", i, tried[i], w)
		}
	}
}

func TestParseCmdline(t *testing.T) {
	got := parseCmdline("BOOT_IMAGE=/vmlinuz root=PARTLABEL=a quiet root=\"PARTLABEL=b c\" x=\"\" sprout.device=/dev/vda\n")
	want := map[string]string{"BOOT_IMAGE": "/vmlinuz", "root": "PARTLABEL=b c", "quiet": "", "x": "", "sprout.device": "/dev/vda"}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestLoaderDevicePartUUID(t *testing.T) {
	f := newFake(t)
	if id, note := readLoaderDevicePartUUID(f.env.EFIVars); id != "" || !strings.Contains(note, "no efivarfs") {
		t.Errorf("without efivarfs: %q %q", id, note)
	}
	f.efiVar("0FC63DAF-8483-4772-8E79-3D69D8477DE4")
	if id, note := readLoaderDevicePartUUID(f.env.EFIVars); id != "0fc63daf-8483-4772-8e79-3d69d8477de4" {
		t.Errorf("got %q (%s)", id, note)
	}
	f.efiVarRaw([]byte("\x06\x00\x00\x00x"))
	if id, note := readLoaderDevicePartUUID(f.env.EFIVars); id != "" || !strings.Contains(note, "malformed") {
		t.Errorf("odd length: %q %q", id, note)
	}
}
