package crash

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/sprout-initrd/sprout/tests/harness"
	"golang.org/x/sys/unix"
)

// The guest half of the dm-log-writes tier. The test binary itself is
// the VM's /init: the kernel passes sprout_crash_guest=1 from its command
// line into init's environment, and TestMain hands over to guestMain. It
// stacks a dm-log-writes target over the disk (log on the second disk),
// a loop device with direct I/O over that (the kernel has a GPT parser,
// so the old partitions appear as at a real boot, and sprout can tell the
// kernel about new ones, which a device-mapper device cannot have), runs
// sprout on the loop device, and powers off.

const (
	envGuest      = "sprout_crash_guest"
	guestConfPath = "/guest.json"
	guestPrefix   = "SPROUT-CRASH-GUEST"
	logTarget     = "sproutlog"
)

// guestConfig is /guest.json in the initramfs.
type guestConfig struct {
	Modules    []string // kernel modules to load, in order
	Argv       []string // sprout's command line, without the device
	SectorSize int
}

func say(format string, args ...any) {
	fmt.Printf(guestPrefix+" "+format+"\n", args...)
}

// guestMain runs as PID 1 in the VM and never returns.
func guestMain() {
	if err := runGuest(); err != nil {
		say("error %s", strings.ReplaceAll(err.Error(), "\n", " | "))
	}
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

func runGuest() error {
	var cfg guestConfig
	if err := harness.StartGuest(guestConfPath, &cfg); err != nil {
		return err
	}
	if err := harness.LoadModules(cfg.Modules); err != nil {
		return err
	}
	for _, d := range []string{"/dev/vda", "/dev/vdb", "/dev/mapper/control", "/dev/loop-control"} {
		if err := waitFor(d); err != nil {
			return err
		}
	}
	sectors, err := readSysInt("/sys/block/vda/size")
	if err != nil {
		return err
	}
	minor, err := dmCreate(logTarget, fmt.Sprintf("0 %d log-writes /dev/vda /dev/vdb", sectors))
	if err != nil {
		return err
	}
	dm := fmt.Sprintf("/dev/dm-%d", minor)
	if err := waitFor(dm); err != nil {
		return err
	}
	loop, err := attachDirect(dm, cfg.SectorSize)
	if err != nil {
		return err
	}
	say("disk %s over %s", loop.Name(), dm)
	if err := dmMessage(logTarget, "mark sprout-start"); err != nil {
		return err
	}
	cmd := exec.Command(cfg.Argv[0], append(cfg.Argv[1:], loop.Name())...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	runErr := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err := dmMessage(logTarget, "mark sprout-end"); err != nil {
		return err
	}
	if err := unix.IoctlSetInt(int(loop.Fd()), unix.LOOP_CLR_FD, 0); err != nil {
		return fmt.Errorf("detach %s: %w", loop.Name(), err)
	}
	loop.Close()
	unix.Sync()
	// Removing the target writes its last entries and the log's super block.
	if err := dmRemove(logTarget); err != nil {
		return err
	}
	say("sprout exit=%d err=%q", code, fmt.Sprint(runErr))
	return nil
}

func waitFor(path string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readSysInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// attachDirect binds a free loop device to dev with direct I/O and
// partition scanning.
func attachDirect(dev string, sectorSize int) (*os.File, error) {
	backing, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer backing.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer ctl.Close()
	n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
	if err != nil {
		return nil, fmt.Errorf("LOOP_CTL_GET_FREE: %w", err)
	}
	node := "/dev/loop" + strconv.Itoa(n)
	if err := waitFor(node); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(node, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	cfg := unix.LoopConfig{Fd: uint32(backing.Fd()), Size: uint32(sectorSize)}
	cfg.Info.Flags = unix.LO_FLAGS_DIRECT_IO | unix.LO_FLAGS_PARTSCAN
	if err := unix.IoctlLoopConfigure(int(f.Fd()), &cfg); err != nil {
		f.Close()
		return nil, fmt.Errorf("LOOP_CONFIGURE %s over %s: %w", node, dev, err)
	}
	return f, nil
}

// Device-mapper ioctls (linux/dm-ioctl.h): every call passes a struct
// dm_ioctl, optionally followed by a payload at data_start.
const dmIoctlSize = int(unsafe.Sizeof(unix.DmIoctl{}))

func dmCall(cmd uint, name string, payload []byte, flags uint32) (*unix.DmIoctl, error) {
	ctl, err := os.OpenFile("/dev/mapper/control", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer ctl.Close()
	buf := make([]byte, dmIoctlSize+len(payload)+16<<10) // room for replies
	h := (*unix.DmIoctl)(unsafe.Pointer(&buf[0]))
	h.Version = [3]uint32{unix.DM_VERSION_MAJOR, 0, 0}
	h.Data_size = uint32(len(buf))
	h.Data_start = uint32(dmIoctlSize)
	h.Flags = flags
	copy(h.Name[:len(h.Name)-1], name)
	copy(buf[dmIoctlSize:], payload)
	if cmd == unix.DM_TABLE_LOAD {
		h.Target_count = 1
	}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, ctl.Fd(), uintptr(cmd), uintptr(unsafe.Pointer(&buf[0]))); errno != 0 {
		return nil, fmt.Errorf("device-mapper ioctl %#x on %s: %w", cmd, name, errno)
	}
	out := *h
	return &out, nil
}

// dmCreate creates and activates device name with a one-target table
// "start length type params" and returns its minor number.
func dmCreate(name, table string) (uint32, error) {
	f := strings.SplitN(table, " ", 4)
	if len(f) != 4 {
		return 0, fmt.Errorf("bad table %q", table)
	}
	start, err1 := strconv.ParseUint(f[0], 10, 64)
	length, err2 := strconv.ParseUint(f[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	h, err := dmCall(unix.DM_DEV_CREATE, name, nil, 0)
	if err != nil {
		return 0, err
	}
	spec := unix.DmTargetSpec{Sector_start: start, Length: length}
	copy(spec.Target_type[:len(spec.Target_type)-1], f[2])
	params := append([]byte(f[3]), 0)
	for (int(unsafe.Sizeof(spec))+len(params))%8 != 0 {
		params = append(params, 0)
	}
	spec.Next = uint32(int(unsafe.Sizeof(spec)) + len(params))
	payload := append(unsafe.Slice((*byte)(unsafe.Pointer(&spec)), unsafe.Sizeof(spec)), params...)
	if _, err := dmCall(unix.DM_TABLE_LOAD, name, payload, 0); err != nil {
		return 0, err
	}
	if _, err := dmCall(unix.DM_DEV_SUSPEND, name, nil, 0); err != nil { // resume
		return 0, err
	}
	return unix.Minor(h.Dev), nil
}

// dmMessage sends a target message (e.g. "mark NAME" to log-writes).
func dmMessage(name, msg string) error {
	payload := make([]byte, 8, 8+len(msg)+1) // struct dm_target_msg: sector, message
	payload = append(append(payload, msg...), 0)
	_, err := dmCall(unix.DM_TARGET_MSG, name, payload, 0)
	return err
}

func dmRemove(name string) error {
	_, err := dmCall(unix.DM_DEV_REMOVE, name, nil, 0)
	return err
}
