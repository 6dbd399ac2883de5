package crash

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// The dm-log-writes tier: sprout runs once inside a VM (Debian's kernel,
// which has dm-log-writes) on a device that logs every write bio that
// reaches the disk, in completion order, with its FLUSH/FUA flags — the
// writes as the disk saw them after the page cache, loop devices and
// mkfs's own buffering, not as system calls. Every prefix of that log
// that changes the disk is replayed onto a copy of the old disk and
// examined like a crash point of the strace tier. This models a power cut
// on a disk without a volatile cache (or one that honours flushes and
// writes in order); reordering within a flush interval is not explored.

var guestModulesWanted = []string{"virtio_pci", "virtio_blk", "dm_log_writes", "loop"}

// guestTools are the programs sprout runs in the guest, with the files
// they read.
var guestTools = []string{"mkfs.ext4", "mke2fs", "mkfs.vfat", "mkfs.fat"}

func TestLogWrites(t *testing.T) {
	harness.RequireRoot(t, "the dm-log-writes tier (QEMU, loop devices)")
	harness.RequireTools(t, append([]string{"qemu-system-x86_64", "ldd"}, requiredTools...)...)
	s := theSuite
	if s.setupErr != nil {
		t.Fatal(s.setupErr)
	}
	kernel, modDir, err := harness.FetchKernel(context.Background())
	if err != nil {
		harness.Unavailable(t, err.Error(), harness.EnvRequireTools)
	}
	ran := 0
	for _, sc := range s.scenarios(t) {
		if !sc.LogWrites {
			continue
		}
		ran++
		t.Run(sc.Name, func(t *testing.T) { s.logWritesScenario(t, sc, kernel, modDir) })
	}
	if ran == 0 && s.only == "" {
		t.Fatal("no scenario has log_writes set")
	}
}

func (s *suite) logWritesScenario(t *testing.T, sc *scenario, kernel, modDir string) {
	ctx := context.Background()
	start := time.Now()
	ref := s.prepare(ctx, t, sc)
	logPath, err := s.recordInVM(ctx, ref, kernel, modDir, ref.work)
	if err != nil {
		t.Fatal(err)
	}
	l, err := readWriteLog(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.SectorSize != sc.SectorSize {
		t.Fatalf("the log has %d-byte sectors, the scenario %d", l.SectorSize, sc.SectorSize)
	}
	var writes, discards, flushes, marks int
	for _, e := range l.Entries {
		switch {
		case e.Flags&logMark != 0:
			marks++
		case e.Flags&logDiscard != 0:
			discards++
		case e.Sectors > 0:
			writes++
		}
		if e.Flags&(logFlush|logFUA) != 0 {
			flushes++
		}
	}
	t.Logf("log: %d entries: %d writes, %d discards, %d with FLUSH/FUA, %d marks (%s)", len(l.Entries), writes, discards, flushes, marks, markNames(l))

	outs, err := s.replayPoints(ctx, ref, l)
	if err != nil {
		t.Fatal(err)
	}
	what := fmt.Sprintf("dm-log-writes, power cut after each of the %d log entries that change the disk", writes+discards)
	s.summarize(t, sc, what, "replayed log", outs, writes+discards)
	t.Logf("%s took %s (summed over workers: %s)", sc.Name, time.Since(start).Round(time.Second), ref.tm.String())
}

func markNames(l *writeLog) string {
	var m []string
	for _, e := range l.Entries {
		if e.Mark != "" {
			m = append(m, fmt.Sprintf("%q at %d", e.Mark, e.Index))
		}
	}
	return strings.Join(m, ", ")
}

// replayPoints replays the log entry by entry onto a copy of the old disk
// and examines a copy of every state that differs from the one before.
// An outcome's k is the length of the replayed prefix.
// The state after the last entry must be the uninterrupted run's.
func (s *suite) replayPoints(ctx context.Context, ref *reference, l *writeLog) ([]outcome, error) {
	dir, err := os.MkdirTemp(ref.work, "replay-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cur := filepath.Join(dir, "replay.img")
	if err := harness.CopySparse(ref.base, cur); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(cur, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	type job struct {
		index int // entries replayed: the prefix 0..index-1
		img   string
	}
	jobs := make(chan job, s.jobs)
	var mu sync.Mutex
	var outs []outcome
	var wg sync.WaitGroup
	for range s.jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				o := outcome{k: j.index}
				fail := func(format string, args ...any) { o.problems = append(o.problems, fmt.Sprintf(format, args...)) }
				o.state = s.examine(ctx, ref, j.img, "", fail)
				if len(o.problems) > 0 && s.keep != "" {
					dst := filepath.Join(s.keep, fmt.Sprintf("%s-logwrites-%d.img", ref.sc.Name, j.index))
					if harness.CopySparse(j.img, dst) == nil {
						o.problems = append(o.problems, "disk image kept as "+dst)
					}
				}
				os.Remove(j.img)
				mu.Lock()
				outs = append(outs, o)
				mu.Unlock()
			}
		}()
	}
	var replayErr error
	for _, e := range l.Entries {
		if !e.changesData() {
			continue
		}
		if replayErr = l.apply(e, f); replayErr != nil {
			break
		}
		if !s.points(e.Index + 1) {
			continue
		}
		snap := filepath.Join(dir, fmt.Sprintf("prefix-%d.img", e.Index+1))
		if replayErr = harness.CopySparse(cur, snap); replayErr != nil {
			break
		}
		jobs <- job{e.Index + 1, snap}
	}
	close(jobs)
	wg.Wait()
	if replayErr != nil {
		return nil, replayErr
	}
	sort.Slice(outs, func(i, j int) bool { return outs[i].k < outs[j].k })
	// The whole log must give the uninterrupted run's disk.
	full, err := readDiskGPT(cur, ref.sc.SectorSize, ref.oldBackupLBA)
	if err != nil {
		return nil, err
	}
	if d := sameTable(ref.known.New, full); len(d) > 0 {
		return nil, fmt.Errorf("the whole log replayed does not give the table of an uninterrupted run: %v", d)
	}
	if p := ref.changedExisting(cur); len(p) > 0 {
		return nil, fmt.Errorf("the whole log replayed: %v", p)
	}
	for _, np := range ref.newParts {
		if err := checkFSInImage(ctx, cur, np.Off, np.Size, ref.sc.SectorSize, np.Format, nil); err != nil {
			return nil, fmt.Errorf("the whole log replayed: partition %q: %w", np.Name, err)
		}
	}
	return outs, nil
}

// recordInVM boots the VM on a copy of the old disk with an empty log
// disk, lets sprout run under dm-log-writes and returns the log's path.
func (s *suite) recordInVM(ctx context.Context, ref *reference, kernel, modDir, work string) (string, error) {
	disk := filepath.Join(work, "vm-disk.img")
	logDisk := filepath.Join(work, "vm-log.img")
	if err := harness.CopySparse(ref.base, disk); err != nil {
		return "", err
	}
	if err := harness.CreateSparse(logDisk, 8<<30); err != nil {
		return "", err
	}
	initrd := filepath.Join(work, "initrd.cpio")
	if err := s.buildGuestInitramfs(ref, modDir, initrd); err != nil {
		return "", fmt.Errorf("guest initramfs: %w", err)
	}
	blk := ""
	if ref.sc.SectorSize != 512 {
		blk = fmt.Sprintf(",logical_block_size=%d,physical_block_size=%d", ref.sc.SectorSize, ref.sc.SectorSize)
	}
	serial := filepath.Join(work, "vm-serial.log")
	// TCG unless asked for KVM, as in the QEMU tier: a /dev/kvm that
	// exists can still hang the guest (it does on the development VM).
	accel := "tcg"
	if os.Getenv("SPROUT_QEMU_ACCEL") == "kvm" {
		accel = "kvm"
	}
	argv := []string{"qemu-system-x86_64", "-nodefaults", "-no-user-config", "-machine", "q35", "-accel", accel,
		"-m", "1024", "-smp", "2", "-display", "none", "-monitor", "none", "-serial", "file:" + serial, "-no-reboot",
		"-kernel", kernel, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 loglevel=4 no_timer_check " + envGuest + "=1",
		"-drive", "file=" + disk + ",format=raw,if=none,id=disk,cache=unsafe", "-device", "virtio-blk-pci,drive=disk" + blk,
		"-drive", "file=" + logDisk + ",format=raw,if=none,id=log,cache=unsafe", "-device", "virtio-blk-pci,drive=log" + blk,
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	console, _ := os.ReadFile(serial)
	if err != nil {
		return "", fmt.Errorf("%s: %w\n%s\nconsole:\n%s", harness.ShellJoin(argv), err, out, lastLines(string(console), 40))
	}
	exit := regexp.MustCompile(guestPrefix + ` sprout exit=(\d+)`).FindStringSubmatch(string(console))
	if exit == nil || exit[1] != "0" {
		return "", fmt.Errorf("sprout in the VM did not succeed; console:\n%s", lastLines(string(console), 40))
	}
	return logDisk, nil
}

// buildGuestInitramfs packs the test binary as /init, sprout, the mkfs
// tools with their libraries, the definitions and the kernel modules.
func (s *suite) buildGuestInitramfs(ref *reference, modDir, out string) error {
	r, err := harness.NewGuestInitramfs()
	if err != nil {
		return err
	}
	bins := map[string]string{"sbin/sprout": s.sprout}
	for _, tool := range guestTools {
		p, err := exec.LookPath(tool)
		if err != nil {
			return err
		}
		bins["sbin/"+tool] = p
	}
	for name, src := range bins {
		if err := r.CopyProgram(name, src); err != nil {
			return err
		}
	}
	if _, err := os.Stat("/etc/mke2fs.conf"); err == nil {
		if err := r.CopyFile("etc/mke2fs.conf", "/etc/mke2fs.conf"); err != nil {
			return err
		}
	}
	defs, err := filepath.Glob(filepath.Join(ref.defs, "*.conf"))
	if err != nil || len(defs) == 0 {
		return fmt.Errorf("no definitions in %s: %v", ref.defs, err)
	}
	for _, d := range defs {
		if err := r.CopyFile("defs/"+filepath.Base(d), d); err != nil {
			return err
		}
	}
	mods, err := harness.KernelModules(modDir, guestModulesWanted)
	if err != nil {
		return err
	}
	cfg := guestConfig{
		Argv:       []string{"/sbin/sprout", "--dry-run=no", "--definitions=/defs", "--seed=" + ref.sc.Seed},
		SectorSize: int(ref.sc.SectorSize),
	}
	for _, m := range mods {
		name := "lib/modules/" + m
		if err := r.CopyFile(name, filepath.Join(modDir, m)); err != nil {
			return err
		}
		cfg.Modules = append(cfg.Modules, "/"+name)
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	r.File(strings.TrimPrefix(guestConfPath, "/"), data, 0o644)
	return r.WriteTo(out)
}
