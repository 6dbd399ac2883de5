package discover

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/gpt"
	"golang.org/x/sys/unix"
)

// fakeSystem is a throw-away /sys, /dev, /proc and efivarfs: sysfs entries
// are directories under sys/devices with sys/class/block symlinks, as in the
// kernel; device nodes are regular files holding GPTs and superblocks.
type fakeSystem struct {
	t    *testing.T
	root string
	env  Env
	next int        // next minor number
	efi  *efiServer // the fake LoaderDevicePartUUID, once set
}

// thisBoot is the fake system's boot ID, as the kernel shows it.
const thisBoot = "9fe03152-311f-412d-b6dc-f546d3c23650"

func newFake(t *testing.T) *fakeSystem {
	t.Helper()
	root := t.TempDir()
	f := &fakeSystem{t: t, root: root, env: Env{
		ProcCmdline: filepath.Join(root, "proc/cmdline"),
		EFIVars:     filepath.Join(root, "sys/firmware/efi/efivars"),
		SysBlock:    filepath.Join(root, "sys/class/block"),
		Dev:         filepath.Join(root, "dev"),
		MountInfo:   filepath.Join(root, "proc/self/mountinfo"),
		OSRoot:      root,
		BootID:      filepath.Join(root, "proc/sys/kernel/random/boot_id"),
	}}
	for _, d := range []string{"proc/self", "sys/class/block", "sys/devices", "dev"} {
		f.mkdir(d)
	}
	f.write("proc/cmdline", "console=ttyS0\n")
	f.write("proc/self/mountinfo", "22 1 0:21 / / rw - tmpfs rootfs rw\n")
	f.write("proc/sys/kernel/random/boot_id", thisBoot+"\n")
	f.write("etc/os-release", "NAME=\"Test\"\nID=debian\n")
	return f
}

func (f *fakeSystem) mkdir(rel string) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Join(f.root, rel), 0o755); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeSystem) write(rel, content string) {
	f.t.Helper()
	f.mkdir(filepath.Dir(rel))
	if err := os.WriteFile(filepath.Join(f.root, rel), []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeSystem) symlink(target, rel string) {
	f.t.Helper()
	f.mkdir(filepath.Dir(rel))
	if err := os.Symlink(target, filepath.Join(f.root, rel)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeSystem) cmdline(s string) { f.write("proc/cmdline", s+"\n") }

func (f *fakeSystem) mount(line string) {
	b, _ := os.ReadFile(f.env.MountInfo)
	f.write("proc/self/mountinfo", string(b)+line+"\n")
}

// efiVar stores a LoaderDevicePartUUID value the way efivarfs shows it.
func (f *fakeSystem) efiVar(value string) {
	b := []byte{0x06, 0, 0, 0} // attributes: boot service + runtime access
	for _, u := range utf16.Encode([]rune(value + "\x00")) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	f.efiVarRaw(b)
}

// efiVarRaw makes LoaderDevicePartUUID a named pipe that hands out content
// to every reader, until the test ends. Like an efivarfs file it cannot be
// seeked (lseek and pread fail with ESPIPE), so a reader that skips the 4
// attribute bytes by seeking fails here as it fails on real firmware.
func (f *fakeSystem) efiVarRaw(content []byte) {
	f.t.Helper()
	if f.efi != nil {
		f.efi.set(content)
		return
	}
	dir := "sys/firmware/efi/efivars"
	f.mkdir(dir)
	path := filepath.Join(f.root, dir, LoaderDevicePartUUIDVar)
	// Each reader gets a FIFO of its own: once a reader has opened one, the
	// next FIFO is renamed into place before the content is written, so a
	// later reader cannot see the content twice or find no writer.
	fresh := func() error {
		tmp := path + ".next"
		if err := unix.Mkfifo(tmp, 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, path)
	}
	if err := fresh(); err != nil {
		f.t.Fatal(err)
	}
	f.efi = &efiServer{content: content}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			w, err := os.OpenFile(path, os.O_WRONLY, 0) // blocks until a reader opens
			if err != nil {
				return
			}
			err = fresh()
			w.Write(f.efi.get()) // one write below PIPE_BUF: the reader gets it whole
			w.Close()
			select {
			case <-done:
				return
			default:
			}
			if err != nil {
				f.t.Errorf("fake efivars: %v", err)
				return
			}
		}
	}()
	f.t.Cleanup(func() {
		close(done)
		finished := make(chan struct{})
		go func() { wg.Wait(); close(finished) }()
		for {
			// Release the writer blocked in open, until it has seen done.
			if r, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0); err == nil {
				r.Close()
			}
			select {
			case <-finished:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
}

// efiServer holds the fake variable's current value.
type efiServer struct {
	mu      sync.Mutex
	content []byte
}

func (e *efiServer) set(b []byte) { e.mu.Lock(); e.content = b; e.mu.Unlock() }
func (e *efiServer) get() []byte  { e.mu.Lock(); defer e.mu.Unlock(); return e.content }

// part describes one partition of a fake disk.
type part struct {
	name  string    // GPT partition name
	uuid  uuid.UUID // GPT partition UUID
	fs    []byte    // what the partition node holds (a superblock), optional
	noDev bool      // the kernel has no device for it (no sysfs entry)
}

func (f *fakeSystem) devNum() string {
	f.next++
	return fmt.Sprintf("253:%d", f.next)
}

// sysEntry creates the sysfs directory rel (under sys/devices) and its
// /sys/class/block link.
func (f *fakeSystem) sysEntry(name, rel string, size int64, extra map[string]string) string {
	dir := "sys/devices/" + rel
	num := f.devNum()
	f.write(dir+"/dev", num+"\n")
	f.write(dir+"/size", fmt.Sprintf("%d\n", size/512))
	f.write(dir+"/uevent", "DEVNAME="+name+"\n")
	for k, v := range extra {
		f.write(dir+"/"+k, v+"\n")
	}
	f.symlink("../../devices/"+rel, "sys/class/block/"+name)
	return num
}

// addDisk creates a disk of size bytes with a GPT holding parts (1 MiB
// each, in order), or no table when parts is nil. It returns the device
// numbers of the disk and its partitions.
func (f *fakeSystem) addDisk(name string, size int64, sectorSize int, parts []part) []string {
	f.t.Helper()
	nums := []string{f.sysEntry(name, "virtual/"+name, size, map[string]string{
		"queue/logical_block_size": fmt.Sprint(sectorSize),
	})}
	node := filepath.Join(f.env.Dev, name)
	if err := os.WriteFile(node, nil, 0o644); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Truncate(node, size); err != nil {
		f.t.Fatal(err)
	}
	if parts == nil {
		return nums
	}
	table := gpt.New(size, sectorSize, uuid.New())
	perMiB := uint64(1<<20) / uint64(sectorSize)
	for i, p := range parts {
		first := table.FirstUsableLBA + uint64(i)*perMiB
		table.Entries = append(table.Entries, gpt.Entry{
			Index: i + 1, Type: uuid.MustParse("0fc63daf-8483-4772-8e79-3d69d8477de4"),
			UUID: p.uuid, FirstLBA: first, LastLBA: first + perMiB - 1, Name: p.name,
		})
		if p.noDev {
			continue
		}
		pname := name + fmt.Sprint(i+1)
		if last := name[len(name)-1]; last >= '0' && last <= '9' {
			pname = name + "p" + fmt.Sprint(i+1)
		}
		nums = append(nums, f.sysEntry(pname, "virtual/"+name+"/"+pname, int64(perMiB)*int64(sectorSize),
			map[string]string{"partition": fmt.Sprint(i + 1), "start": fmt.Sprint(first * uint64(sectorSize) / 512)}))
		f.write("dev/"+pname, string(p.fs))
	}
	writes, err := table.Encode(size)
	if err != nil {
		f.t.Fatal(err)
	}
	w, err := os.OpenFile(node, os.O_WRONLY, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	defer w.Close()
	for _, wr := range writes {
		if _, err := w.WriteAt(wr.Data, wr.Offset); err != nil {
			f.t.Fatal(err)
		}
	}
	return nums
}

// addDM creates a device-mapper device built on slaves.
func (f *fakeSystem) addDM(name string, slaves ...string) string {
	num := f.sysEntry(name, "virtual/"+name, 1<<20, nil)
	for _, s := range slaves {
		f.mkdir("sys/devices/virtual/" + name + "/slaves/" + s) // only the names are read
	}
	f.write("dev/"+name, "")
	return num
}

// ext4 returns a minimal ext4 superblock region with label and UUID.
func ext4(label string, id uuid.UUID) []byte {
	b := make([]byte, 4096)
	binary.LittleEndian.PutUint16(b[1024+56:], 0xEF53)
	copy(b[1024+104:], id[:])
	copy(b[1024+120:], label)
	return b
}

// fat16 returns a FAT16 boot sector with label and serial number.
func fat16(label string, serial uint32) []byte {
	b := make([]byte, 4096)
	binary.LittleEndian.PutUint32(b[39:], serial)
	copy(b[43:], fmt.Sprintf("%-11s", label))
	copy(b[54:], "FAT16   ")
	b[510], b[511] = 0x55, 0xAA
	return b
}
