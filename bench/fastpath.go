package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// minimalNoopRead is what a no-op run must read of a 512-byte-sector disk
// with 128-entry arrays: LBA 0, the two headers and the two entry arrays,
// in one read per GPT area (LBA 0-33 and the backup's 33 sectors).
const (
	minimalNoopReads = 2
	minimalNoopBytes = 3*512 + 2*128*128
)

// syscallStats is what strace saw of one run.
type syscallStats struct {
	diskReads, diskBytes int64 // read-family calls on the image file
	otherReads           int64 // read-family calls on anything else
	execs                int   // successful execve after the first
	processes, threads   int   // clones without / with CLONE_THREAD
	writesToDisk         int   // write-family calls on the image file
}

var straceLine = regexp.MustCompile(`^(\w+)\((\d+)<([^>]*)>.*\)\s+=\s+(-?\d+)`)

// fastPath checks the no-op fast path with strace: which reads reach the
// disk, whether anything is spawned.
func (b *bench) fastPath() error {
	if _, err := exec.LookPath("strace"); err != nil {
		b.rows = append(b.rows, row{what: "No-op syscalls (strace)", result: "NOT MEASURED: strace is missing (apt-get install strace)"})
		b.failures++
		return nil
	}
	golden, err := b.grow("fast-golden.img", 10*gib)
	if err != nil {
		return err
	}
	if _, err := b.timeOnce(b.repart.path, runArgs(false, b.defsExt4, golden)...); err != nil {
		return err
	}
	var stats [2]syscallStats
	for k, t := range []tool{b.sprout, b.repart} {
		img := filepath.Join(b.work, "fast-"+strconv.Itoa(k)+".img")
		if err := copySparse(golden, img); err != nil {
			return err
		}
		if stats[k], err = b.strace(t.path, img, runArgs(false, b.defsExt4, img)...); err != nil {
			return err
		}
		if err := os.Remove(img); err != nil {
			return err
		}
	}
	s, r := stats[0], stats[1]
	readRow := row{
		what:   "No-op: reads of the disk (calls / bytes)",
		sprout: fmt.Sprintf("%d / %s", s.diskReads, bytesStr(s.diskBytes)),
		repart: fmt.Sprintf("%d / %s", r.diskReads, bytesStr(r.diskBytes)),
		ratio:  ratioStr(s.diskBytes, r.diskBytes),
		target: fmt.Sprintf("%d / %s (LBA 0-33, the backup's 33 sectors)", minimalNoopReads, bytesStr(minimalNoopBytes)),
		result: "met",
	}
	if s.diskReads > minimalNoopReads || s.diskBytes > minimalNoopBytes {
		readRow.result = fmt.Sprintf("MISSED: %d extra reads, %s extra", s.diskReads-minimalNoopReads, bytesStr(s.diskBytes-minimalNoopBytes))
	}
	spawnRow := row{
		what:   "No-op: programs executed / processes forked / threads",
		sprout: fmt.Sprintf("%d / %d / %d", s.execs, s.processes, s.threads),
		repart: fmt.Sprintf("%d / %d / %d", r.execs, r.processes, r.threads),
		target: "sprout spawns nothing",
		result: "met",
	}
	if s.execs > 0 || s.processes > 0 {
		spawnRow.result = "MISSED"
		b.failures++
	}
	writeRow := row{
		what:   "No-op: writes to the disk / other reads (files, /proc, /sys)",
		sprout: fmt.Sprintf("%d / %d", s.writesToDisk, s.otherReads),
		repart: fmt.Sprintf("%d / %d", r.writesToDisk, r.otherReads),
		target: "no writes", result: "met",
	}
	if s.writesToDisk > 0 {
		writeRow.result = "FAILED"
		b.failures++
	}
	b.rows = append(b.rows, readRow, spawnRow, writeRow)
	return nil
}

// strace runs one command under strace and counts its syscalls. With
// -ff every thread writes its own file, so no call is split into
// "unfinished" and "resumed" halves; -y names the file behind each fd.
func (b *bench) strace(path, image string, args ...string) (syscallStats, error) {
	dir := filepath.Join(b.work, "strace")
	if err := os.RemoveAll(dir); err != nil {
		return syscallStats{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return syscallStats{}, err
	}
	image, err := filepath.EvalSymlinks(image)
	if err != nil {
		return syscallStats{}, err
	}
	argv := append([]string{"-ff", "-qq", "-y", "-o", filepath.Join(dir, "trace"),
		"-e", "trace=execve,read,pread64,readv,preadv,preadv2,write,pwrite64,writev,pwritev,pwritev2,clone,clone3,fork,vfork",
		path}, args...)
	cmd := exec.CommandContext(b.ctx, "strace", argv...)
	cmd.Env = benchEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return syscallStats{}, fmt.Errorf("strace %s: %w\n%s", path, err, tail(string(out), 2000))
	}
	traces, err := filepath.Glob(filepath.Join(dir, "trace.*"))
	if err != nil {
		return syscallStats{}, err
	}
	var s syscallStats
	execs := 0
	for _, t := range traces {
		data, err := os.ReadFile(t)
		if err != nil {
			return syscallStats{}, err
		}
		for _, line := range strings.Split(string(data), "\n") {
			switch {
			case strings.HasPrefix(line, "execve(") && strings.HasSuffix(line, "= 0"):
				execs++
				continue
			case strings.HasPrefix(line, "clone(") || strings.HasPrefix(line, "clone3(") || strings.HasPrefix(line, "fork(") || strings.HasPrefix(line, "vfork("):
				if strings.Contains(line, "CLONE_THREAD") {
					s.threads++
				} else {
					s.processes++
				}
				continue
			}
			m := straceLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			name, file := m[1], m[3]
			n, _ := strconv.ParseInt(m[4], 10, 64)
			isRead := strings.HasPrefix(name, "read") || strings.HasPrefix(name, "pread")
			isWrite := strings.HasPrefix(name, "write") || strings.HasPrefix(name, "pwrite")
			switch {
			case isRead && file == image:
				s.diskReads++
				s.diskBytes += max(n, 0)
			case isRead:
				s.otherReads++
			case isWrite && file == image:
				s.writesToDisk++
			}
		}
	}
	s.execs = max(execs-1, 0)
	return s, nil
}
