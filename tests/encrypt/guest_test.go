package encrypt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sprout-initrd/sprout/pkg/blockdev"
	"github.com/sprout-initrd/sprout/tests/harness"
	"golang.org/x/sys/unix"
)

// The guest half: PID 1 in the VM, told by the kernel command line
// (sprout_encrypt_guest=1, passed into init's environment).

const (
	envGuest     = "sprout_encrypt_guest"
	guestConf    = "/guest.json"
	resultPrefix = "SPROUT-ENCRYPT-RESULT "
	errorPrefix  = "SPROUT-ENCRYPT-ERROR "
)

// guestConfig is /guest.json in the initramfs.
type guestConfig struct {
	Modules []string // module files to load, in order (missing optional ones are left out on the host)
	Cases   []guestCase
	// CrashCase is the name of the case sprout is also killed in, at
	// the listed child processes in turn (1 is the first), and run
	// again.
	CrashCase   string
	CrashPoints []int
	// Oracles are the chroot oracles the host shares with the guest
	// (9p, read-only, by mount tag); OracleCases are the cases run in
	// each, both tools inside the chroot with that system's cryptsetup
	// and systemd-cryptenroll.
	Oracles     []guestOracle
	OracleCases []string
}

// guestOracle is one chroot oracle: its 9p tag, its systemd version, and
// the --compat= sprout follows against it.
type guestOracle struct {
	Tag             string
	Version, Compat int
}

// guestCase is one comparison: the same arguments for both tools.
type guestCase struct {
	Name    string
	Defs    string   // definitions directory in the guest
	Args    []string // without the image
	Size    int64    // image size
	KeyFile string   // the key the volumes open with ("" for the empty key)
	// SproutArgs are sprout's own (--compat=), before Args.
	SproutArgs []string
	// Files are copied into place (target → source in the guest) before
	// both tools run, and removed after.
	Files map[string]string
}

// toolResult is what one tool made of one case.
type toolResult struct {
	Case, Tool string
	// Root is the chroot the tool ran in ("" for the guest's own system,
	// whose programs are the host's).
	Root string
	// Killed is the child sprout was killed in (crash runs), and
	// TableAfterKill what sfdisk found on the disk then.
	Killed, TableAfterKill string
	Exit                   int
	Output                 string // the last lines, for failures
	Table                  json.RawMessage
	Partitions             []partitionResult
}

type partitionResult struct {
	Number     int
	LUKS       map[string]string // blkid of the partition: TYPE, VERSION, UUID, LABEL
	Metadata   json.RawMessage   // luksDump --dump-json-metadata
	Opened     string            // how it opened: "key", "tpm2", or the error
	FileSystem map[string]string // blkid inside: TYPE, UUID, LABEL
}

func guestMain() {
	if err := runGuest(); err != nil {
		fmt.Println(errorPrefix + strings.ReplaceAll(err.Error(), "\n", " | "))
	}
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

func runGuest() error {
	var cfg guestConfig
	if err := harness.StartGuest(guestConf, &cfg); err != nil {
		return err
	}
	// No udev here: libdevmapper makes the /dev/mapper nodes itself.
	os.Setenv("DM_DISABLE_UDEV", "1")
	os.Setenv("SYSTEMD_COLORS", "0")
	if err := harness.LoadModules(cfg.Modules); err != nil {
		return err
	}
	for _, c := range cfg.Cases {
		for target, source := range c.Files {
			b, err := os.ReadFile(source)
			if err == nil {
				err = os.MkdirAll(filepath.Dir(target), 0o755)
			}
			if err == nil {
				err = os.WriteFile(target, b, 0o644)
			}
			if err != nil {
				return fmt.Errorf("case %s: %w", c.Name, err)
			}
		}
		for _, tool := range []string{"systemd-repart", "sprout"} {
			if err := report(runTool(c, tool, 0, "", nil)); err != nil {
				return err
			}
		}
		for target := range c.Files {
			os.Remove(target)
		}
		if c.Name != cfg.CrashCase {
			continue
		}
		for _, k := range cfg.CrashPoints {
			if err := report(runTool(c, "sprout", k, "", nil)); err != nil {
				return err
			}
		}
	}
	return runOracles(cfg)
}

// runOracles runs OracleCases in each chroot oracle: its systemd-repart
// and sprout (a static binary, copied into /tmp), each with that
// system's mkfs, cryptsetup and systemd-cryptenroll, and inspects the
// result with that system's cryptsetup and blkid.
func runOracles(cfg guestConfig) error {
	if len(cfg.Oracles) == 0 {
		return nil
	}
	// What the chroots see: sprout, the definitions and the key, in /tmp.
	if err := copyTree("/cases", "/tmp/cases"); err != nil {
		return err
	}
	for _, f := range [][2]string{{"/sbin/sprout", "/tmp/sprout"}, {"/etc/sprout-test.key", "/tmp/sprout-test.key"}} {
		if err := copyFile(f[0], f[1]); err != nil {
			return err
		}
	}
	for _, o := range cfg.Oracles {
		root := "/oracles/" + o.Tag
		if err := mountOracle(o.Tag, root); err != nil {
			return err
		}
		for _, c := range cfg.Cases {
			if !contains(cfg.OracleCases, c.Name) {
				continue
			}
			c.Defs = "/tmp" + c.Defs
			args := make([]string, len(c.Args))
			for i, a := range c.Args {
				a = strings.Replace(a, "--definitions=/cases/", "--definitions=/tmp/cases/", 1)
				args[i] = strings.Replace(a, "--key-file=/etc/", "--key-file=/tmp/", 1)
			}
			c.Args = args
			if c.KeyFile != "" {
				c.KeyFile = "/tmp/sprout-test.key"
			}
			v := strconv.Itoa(o.Version)
			if err := report(runTool(c, "systemd-repart", 0, root, []string{"/usr/bin/systemd-repart"}, v)); err != nil {
				return err
			}
			if err := report(runTool(c, "sprout", 0, root, []string{"/tmp/sprout", "--compat=" + strconv.Itoa(o.Compat)}, v)); err != nil {
				return err
			}
		}
	}
	return nil
}

// mountOracle makes root the chroot of the 9p share tag: the share
// (read-only) under an overlay with a tmpfs on top, so the root is a
// writable mount point as systemd-repart 258+ wants it, and binds in
// what a system needs: /dev (loop and dm nodes, the TPM), /proc, /sys,
// /tmp (the images, sprout, the definitions), tmpfs on /run and /var/tmp.
func mountOracle(tag, root string) error {
	lower, rw := "/oracles/.share/"+tag, "/oracles/.rw/"+tag
	for _, d := range []string{lower, rw, root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := unix.Mount(tag, lower, "9p", unix.MS_RDONLY, "trans=virtio,version=9p2000.L,msize=262144,cache=loose"); err != nil {
		return fmt.Errorf("mount the 9p share %s: %w", tag, err)
	}
	if err := unix.Mount("tmpfs", rw, "tmpfs", 0, ""); err != nil {
		return err
	}
	for _, d := range []string{rw + "/upper", rw + "/work"} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	if err := unix.Mount("overlay", root, "overlay", 0, "lowerdir="+lower+",upperdir="+rw+"/upper,workdir="+rw+"/work"); err != nil {
		return fmt.Errorf("overlay over the 9p share %s: %w", tag, err)
	}
	for _, d := range []string{"/dev", "/proc", "/sys", "/tmp"} {
		if err := unix.Mount(d, root+d, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s into %s: %w", d, root, err)
		}
	}
	for _, d := range []string{"/run", "/var/tmp"} {
		if err := unix.Mount("tmpfs", root+d, "tmpfs", 0, ""); err != nil {
			return fmt.Errorf("tmpfs on %s%s: %w", root, d, err)
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, st.Mode().Perm())
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dst, strings.TrimPrefix(p, src))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		return copyFile(p, target)
	})
}

func report(r toolResult) error {
	line, err := json.Marshal(r)
	if err == nil {
		fmt.Println(resultPrefix + string(line))
	}
	return err
}

// runTool makes the case's disk with one tool and inspects it. With
// killAt > 0 sprout is first killed (SIGKILL, with its children) when its
// killAt-th child process starts — a crash in the middle of encrypting —
// the disk is read, and sprout runs again on it.
//
// root is a chroot to run everything in ("" for the guest's system), with
// prog the tool's command (its path and own flags) and suffix the version
// the result is named with ("sprout-262").
func runTool(c guestCase, tool string, killAt int, root string, prog []string, suffix ...string) toolResult {
	r := toolResult{Case: c.Name, Tool: strings.Join(append([]string{tool}, suffix...), "-"), Root: root}
	if killAt > 0 {
		r.Tool = fmt.Sprintf("sprout killed at child %d", killAt)
	}
	img := filepath.Join("/tmp", c.Name+"-"+r.Tool+".img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		r.Output = err.Error()
		return r
	}
	if err := os.Truncate(img, c.Size); err != nil {
		r.Output = err.Error()
		return r
	}
	argv := prog
	if len(argv) == 0 {
		argv = []string{tool}
		if tool == "sprout" {
			argv = append(argv, c.SproutArgs...)
		}
	}
	argv = append(append(slices.Clone(argv), c.Args...), img)
	if killAt > 0 {
		r.Killed = killAtChild(argv, killAt)
		table, _ := command("", "sfdisk", "--json", img)
		r.TableAfterKill = strings.TrimSpace(strings.ReplaceAll(table, img, "IMAGE"))
	}
	out, code := command(root, argv...)
	r.Exit, r.Output = code, lastLines(out, 15)
	if code != 0 {
		return r
	}
	table, code := command(root, "sfdisk", "--json", img)
	if code != 0 {
		r.Output += "\nsfdisk: " + table
		return r
	}
	t, err := harness.ParseTable([]byte(table))
	if err != nil {
		r.Output += "\n" + err.Error()
		return r
	}
	r.Table = json.RawMessage(strings.ReplaceAll(table, img, "IMAGE"))
	for i, p := range t.Partitions {
		r.Partitions = append(r.Partitions, inspect(root, i+1, img, p.StartBytes(t), p.SizeBytes(t), c.KeyFile))
	}
	os.Remove(img) // the next images need the RAM
	return r
}

// inspect reads a partition's LUKS2 header and opens it, with the
// programs of root ("" for the guest's own).
func inspect(root string, n int, img string, off, size int64, keyFile string) partitionResult {
	p := partitionResult{Number: n}
	loop, err := blockdev.AttachLoop(img, off, size, 512)
	if err != nil {
		p.Opened = err.Error()
		return p
	}
	defer loop.Detach()
	p.LUKS = blkid(root, loop.Path())
	if p.LUKS["TYPE"] != "crypto_LUKS" {
		// Not encrypted: the file system is on the partition itself.
		p.LUKS, p.FileSystem, p.Opened = nil, p.LUKS, "plain"
		return p
	}
	meta, code := command(root, "cryptsetup", "luksDump", "--dump-json-metadata", loop.Path())
	if code == 0 {
		p.Metadata = json.RawMessage(meta)
	}
	name := fmt.Sprintf("check%d", n)
	key := keyFile
	if key == "" {
		key = "/tmp/empty-key"
		os.WriteFile(key, nil, 0o600)
	}
	// Open with the key file alone (no token plugin), then through the
	// systemd-tpm2 token alone (cryptsetup's plugin and the TPM2):
	// "key", "tpm2" or "key+tpm2" says which worked.
	var ways, failures []string
	for _, way := range []struct {
		name string
		args []string
	}{
		{"key", []string{"--disable-external-tokens", "--key-file", key}},
		{"tpm2", []string{"--token-only"}},
	} {
		argv := append(append([]string{"cryptsetup", "open"}, way.args...), loop.Path(), name)
		if out, code := command(root, argv...); code != 0 {
			failures = append(failures, way.name+": "+lastLines(out, 1))
			continue
		}
		ways = append(ways, way.name)
		p.FileSystem = blkid(root, "/dev/mapper/"+name)
		command(root, "cryptsetup", "close", name)
	}
	p.Opened = strings.Join(ways, "+")
	if len(ways) == 0 {
		p.Opened = "not opened: " + strings.Join(failures, "; ")
	}
	return p
}

// killAtChild runs argv in its own process group and kills the group
// when the n-th child process of argv appears (polled every 2 ms; the
// guest runs under TCG, so a child lives far longer). It returns the
// killed child's command line, or why nothing was killed.
func killAtChild(argv []string, n int) string {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "start: " + err.Error()
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	seen := map[int]string{}
	for {
		select {
		case <-done:
			return fmt.Sprintf("not killed: the run ended after %d children", len(seen))
		case <-time.After(2 * time.Millisecond):
		}
		for _, pid := range childrenOf(cmd.Process.Pid) {
			if _, ok := seen[pid]; ok {
				continue
			}
			seen[pid] = cmdline(pid, argv[0])
			if len(seen) == n {
				unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
				<-done
				return seen[pid]
			}
		}
	}
}

// cmdline is a child's command line once it has run exec (a child seen
// right after fork still has its parent's), waiting up to 100 ms; a child
// that is gone by then is named as such.
func cmdline(pid int, parent string) string {
	line := "a child that ended before its command line was read"
	for i := 0; i < 50; i++ {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || len(b) == 0 {
			break
		}
		line = strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
		if !strings.HasPrefix(line, parent+" ") {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	return line
}

func childrenOf(parent int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(parent) {
			out = append(out, pid)
		}
	}
	return out
}

func blkid(root, dev string) map[string]string {
	out, _ := command(root, "blkid", "-p", "-o", "export", dev)
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			switch k {
			case "TYPE", "VERSION", "UUID", "LABEL":
				m[k] = v
			}
		}
	}
	return m
}

// command runs argv, in the chroot root when it is not "".
func command(root string, argv ...string) (string, int) {
	cmd := exec.Command(argv[0], argv[1:]...)
	if root != "" {
		// The program is the chroot's: looked up in its directories, not
		// in the guest's $PATH.
		cmd.Path = argv[0]
		if !strings.HasPrefix(argv[0], "/") {
			for _, d := range []string{"/usr/sbin/", "/usr/bin/"} {
				if _, err := os.Stat(root + d + argv[0]); err == nil {
					cmd.Path = d + argv[0]
					break
				}
			}
		}
		cmd.Err = nil
		cmd.SysProcAttr = &unix.SysProcAttr{Chroot: root}
		cmd.Dir = "/"
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if cmd.ProcessState == nil {
			return err.Error(), -1
		}
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
