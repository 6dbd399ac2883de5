//go:build qemu

package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// vm is one QEMU boot of a raw disk: a direct kernel boot (kernel, initrd,
// cmdline), or UEFI firmware that boots the disk itself (firmware).
type vm struct {
	kernel, initrd string
	disk           string
	cmdline        string
	// firmware, when set, is the UEFI code image (OVMF_CODE_4M.fd) and
	// vars the machine's own writable copy of its variable store. The
	// firmware boots the disk, or with firmwareKernel the kernel QEMU
	// passes it (-kernel, -initrd, -append): EFI variables without a
	// boot loader.
	firmware, vars string
	firmwareKernel bool
	// tpmState, when set, gives the machine a TPM 2.0 (tpm-tis): an swtpm
	// emulator whose state lives in this directory, so it survives from
	// one boot to the next like a real TPM's.
	tpmState   string
	bus        string // "virtio", "nvme", "sd", "usb" or "scsi" (busDevices)
	sectorSize int
	serialLog  string // file the serial console is written to
	timeout    time.Duration
}

// boot is what one boot produced.
type boot struct {
	log  string        // the serial console, without terminal escapes
	wall time.Duration // QEMU start to exit
	// rootUptime is the guest's uptime when the root's init started: the
	// time from kernel start through the initrd and switch-root.
	rootUptime float64
	guest      []guestLine
	// hung: no power-off within the timeout; failed: a failure marker
	// was seen (the boot ended, or was ended, without reaching the root).
	hung, failed bool
}

// Markers of a boot that will not reach the root. Both initrds end such a
// boot by themselves (rd.shell=0 rd.emergency=poweroff, panic=-1); seeing
// one only shortens the wait.
var failureMarkers = []string{
	"Kernel panic", "Boot has failed", "Entering emergency mode", "You are in emergency mode",
	"Dropping to a shell", "ALERT!",
}

// ansi matches terminal escape sequences (systemd's coloured status lines).
var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

func (v vm) args() []string {
	// TCG by default: CI has no usable KVM (a /dev/kvm that exists can
	// still hang the guest, as on the development machine).
	accel := "tcg"
	if os.Getenv("SPROUT_QEMU_ACCEL") == "kvm" {
		accel = "kvm"
	}
	blk := ""
	if v.sectorSize != 512 {
		blk = fmt.Sprintf(",logical_block_size=%d,physical_block_size=%d", v.sectorSize, v.sectorSize)
	}
	devices, ok := busDevices[v.bus]
	if !ok {
		devices = busDevices["virtio"]
	}
	args := []string{
		"-nodefaults", "-no-user-config", "-machine", "q35", "-accel", accel,
		"-m", "1024", "-smp", "1",
		"-display", "none", "-monitor", "none", "-serial", "file:" + v.serialLog,
		"-no-reboot",
	}
	if v.firmware != "" {
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+v.firmware,
			"-drive", "if=pflash,format=raw,unit=1,file="+v.vars)
	}
	if v.firmware == "" || v.firmwareKernel {
		args = append(args, "-kernel", v.kernel, "-initrd", v.initrd, "-append", v.cmdline)
	}
	if v.tpmState != "" {
		args = append(args,
			"-chardev", "socket,id=chrtpm,path="+v.tpmSocket(),
			"-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
			"-device", "tpm-tis,tpmdev=tpm0")
	}
	// discard=unmap: the guest's discards reach the image (holes), as
	// on a real medium that honours them.
	args = append(args, "-drive", "file="+v.disk+",format=raw,if=none,id=disk0,discard=unmap")
	for i, d := range devices {
		if i == len(devices)-1 {
			d += blk
		}
		args = append(args, "-device", d)
	}
	return args
}

// busDevices are the QEMU devices that attach the disk (drive disk0) on
// each bus: the controller, then the disk itself.
var busDevices = map[string][]string{
	"virtio": {"virtio-blk-pci,drive=disk0"},
	"nvme":   {"nvme,serial=sprout0001,drive=disk0"},
	// An SD card on an SD host controller: the kernel's sdhci-pci and
	// mmc_block, /dev/mmcblk0. QEMU wants its size a power of two.
	"sd": {"sdhci-pci", "sd-card,drive=disk0"},
	// A USB stick: USB mass storage (bulk-only) behind an xHCI controller.
	"usb": {"qemu-xhci", "usb-storage,drive=disk0"},
	// A SCSI disk behind virtio-scsi.
	"scsi": {"virtio-scsi-pci", "scsi-hd,drive=disk0"},
}

func (v vm) tpmSocket() string { return filepath.Join(v.tpmState, "swtpm.sock") }

// startTPM starts swtpm for one boot (it ends when QEMU closes the
// connection, --terminate) and waits for its control socket. The state
// directory is made by swtpm_setup on the first call, as a new TPM is
// manufactured once.
func (v vm) startTPM(ctx context.Context) (*exec.Cmd, error) {
	if err := os.MkdirAll(v.tpmState, 0o700); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(v.tpmState, "tpm2-00.permall")); err != nil {
		out, err := exec.CommandContext(ctx, "swtpm_setup", "--tpm2", "--tpmstate", v.tpmState,
			"--createek", "--overwrite").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("swtpm_setup: %w: %s", err, out)
		}
	}
	_ = os.Remove(v.tpmSocket())
	cmd := exec.CommandContext(ctx, "swtpm", "socket", "--tpm2", "--terminate",
		"--tpmstate", "dir="+v.tpmState, "--ctrl", "type=unixio,path="+v.tpmSocket(),
		"--log", "file="+filepath.Join(v.tpmState, "swtpm.log"))
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting swtpm: %w", err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(v.tpmSocket()); err == nil {
			return cmd, nil
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return nil, fmt.Errorf("swtpm did not create %s within 10 s", v.tpmSocket())
}

// run boots the VM and waits until the guest powers off. A boot that does
// not end within the timeout, or shows a failure marker, is an error that
// carries the tail of the serial log.
func (v vm) run(ctx context.Context) (*boot, error) {
	_ = os.Remove(v.serialLog)
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	if v.tpmState != "" {
		tpm, err := v.startTPM(ctx)
		if err != nil {
			return nil, err
		}
		defer func() {
			// QEMU has exited: swtpm ends by itself (--terminate); kill
			// it should it not.
			done := make(chan struct{})
			go func() { _ = tpm.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = tpm.Process.Kill()
				<-done
			}
		}()
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", v.args()...)
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting qemu-system-x86_64: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var failedAt time.Time
	var waitErr error
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case waitErr = <-done:
			break loop
		case <-tick.C:
			if !failedAt.IsZero() {
				if time.Since(failedAt) > 20*time.Second {
					cancel() // it did not power off by itself
				}
				continue
			}
			if b, err := os.ReadFile(v.serialLog); err == nil && containsAny(string(b), failureMarkers) {
				failedAt = time.Now()
			}
		}
	}
	b := &boot{wall: time.Since(start)}
	raw, _ := os.ReadFile(v.serialLog)
	b.log = strings.ReplaceAll(ansi.ReplaceAllString(string(raw), ""), "\r", "")
	b.guest = parseGuest(b.log)
	if up, ok := first(b.guest, "root-reached"); ok {
		b.rootUptime, _ = strconv.ParseFloat(up.kv["uptime"], 64)
	}

	b.hung = errors.Is(ctx.Err(), context.DeadlineExceeded) && failedAt.IsZero()
	b.failed = !failedAt.IsZero()
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) && failedAt.IsZero():
		return b, fmt.Errorf("boot hung: no power-off within %s (qemu said: %q)\n%s", v.timeout, strings.TrimSpace(stderr.String()), tail(b.log, 40))
	case !failedAt.IsZero():
		return b, fmt.Errorf("boot failed (%s)\n%s", firstMarker(b.log), tail(b.log, 60))
	case waitErr != nil:
		return b, fmt.Errorf("qemu: %v: %s\n%s", waitErr, strings.TrimSpace(stderr.String()), tail(b.log, 40))
	}
	if _, ok := first(b.guest, "done"); !ok {
		return b, fmt.Errorf("the guest powered off without reaching the end of the root's init\n%s", tail(b.log, 60))
	}
	return b, nil
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func firstMarker(log string) string {
	for _, m := range failureMarkers {
		if strings.Contains(log, m) {
			return m
		}
	}
	return "failure"
}

// tail returns the last n non-empty lines of the serial log, indented.
func tail(log string, n int) string {
	var lines []string
	for _, l := range strings.Split(log, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "--- serial log, last lines ---\n    " + strings.Join(lines, "\n    ")
}

// guestLine is one "SPROUT-GUEST <what> k=v …" line of the root's init.
type guestLine struct {
	what string
	kv   map[string]string
	text string // everything after <what>
}

var guestRE = regexp.MustCompile(`SPROUT-GUEST (\S+) ?(.*)`)

func parseGuest(log string) []guestLine {
	var out []guestLine
	for _, l := range strings.Split(log, "\n") {
		m := guestRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		g := guestLine{what: m[1], kv: map[string]string{}, text: m[2]}
		for _, f := range strings.Fields(m[2]) {
			if k, v, ok := strings.Cut(f, "="); ok {
				g.kv[k] = v
			}
		}
		out = append(out, g)
	}
	return out
}

func first(lines []guestLine, what string) (guestLine, bool) {
	for _, g := range lines {
		if g.what == what {
			return g, true
		}
	}
	return guestLine{}, false
}

// find returns the first line of kind what whose key k has value v.
func find(lines []guestLine, what, k, v string) (guestLine, bool) {
	for _, g := range lines {
		if g.what == what && g.kv[k] == v {
			return g, true
		}
	}
	return guestLine{}, false
}
