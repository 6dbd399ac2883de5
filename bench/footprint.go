package main

import (
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// footprint compares what each tool costs on disk: the binary with the
// shared libraries it loads, and the bytes it adds to a dracut initrd.
func (b *bench) footprint() error {
	st, err := os.Stat(b.sprout.path)
	if err != nil {
		return err
	}
	kind, err := elfKind(b.sprout.path)
	if err != nil {
		return err
	}
	libs, err := lddClosure(b.repart.path)
	if err != nil {
		return err
	}
	rst, err := os.Stat(b.repart.path)
	if err != nil {
		return err
	}
	var libBytes int64
	for _, l := range libs {
		libBytes += l.size
	}
	r := row{
		what:   "Binary on disk: bin/sprout vs systemd-repart + the shared libraries it loads (ldd)",
		sprout: fmt.Sprintf("%s (%s)", bytesStr(st.Size()), kind),
		repart: fmt.Sprintf("%s + %d libraries %s = %s", bytesStr(rst.Size()), len(libs), bytesStr(libBytes), bytesStr(rst.Size()+libBytes)),
		ratio:  fmt.Sprintf("%.2f", float64(st.Size())/float64(rst.Size()+libBytes)),
		target: "sprout ≤ 4 MiB stripped",
		result: "met",
	}
	if st.Size() > 4<<20 || !strings.Contains(kind, "stripped") || strings.Contains(kind, "not stripped") {
		r.result = fmt.Sprintf("MISSED (%s, %s)", bytesStr(st.Size()), kind)
	}
	b.rows = append(b.rows, r)
	var list []string
	for _, l := range libs {
		list = append(list, fmt.Sprintf("%s %s", filepath.Base(l.path), bytesStr(l.size)))
	}
	b.notes = append(b.notes, "systemd-repart's libraries (ldd): "+strings.Join(list, ", ")+".")

	if _, err := os.Stat(filepath.Join(b.cfg.repo, "initrd", "dracut", "90sprout")); err != nil {
		b.rows = append(b.rows, row{what: "Bytes added to a dracut initrd", result: "NOT MEASURED: initrd/dracut/90sprout is missing"})
		b.failures++
		return nil
	}
	if _, err := exec.LookPath("dracut"); err != nil {
		b.rows = append(b.rows, row{what: "Bytes added to a dracut initrd", result: "NOT MEASURED: dracut is missing (apt-get install dracut-core)"})
		b.failures++
		return nil
	}
	return b.initrdBytes()
}

// elfKind says whether a binary is static and stripped.
func elfKind(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	kind := "static"
	if f.Section(".interp") != nil || f.Section(".dynamic") != nil {
		kind = "dynamic"
	}
	if f.Section(".symtab") != nil || f.Section(".debug_info") != nil || f.Section(".zdebug_info") != nil {
		return kind + ", not stripped", nil
	}
	return kind + ", stripped", nil
}

type lib struct {
	path string // resolved
	size int64
	// names are the names it goes by (the ldd name and the file's name).
	names []string
}

// lddClosure lists the shared libraries ldd says path loads, resolved and
// without duplicates.
func lddClosure(path string) ([]lib, error) {
	out, err := exec.Command("ldd", path).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not a dynamic executable") {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %w: %s", path, err, out)
	}
	seen := map[string]int{}
	var libs []lib
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		var name, p string
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			name, p = f[0], f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			name, p = filepath.Base(f[0]), f[0]
		default:
			continue // linux-vdso.so.1 lives in the kernel
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil, err
		}
		if i, ok := seen[real]; ok {
			libs[i].names = append(libs[i].names, name)
			continue
		}
		st, err := os.Stat(real)
		if err != nil {
			return nil, err
		}
		seen[real] = len(libs)
		libs = append(libs, lib{path: real, size: st.Size(), names: []string{name, filepath.Base(real)}})
	}
	return libs, nil
}

// initrdBytes builds three dracut systemd initrds, uncompressed: a base,
// the base with sprout's dracut module (initrd/dracut/90sprout), and the
// base with dracut's systemd-repart module plus mke2fs (which that module
// does not install, and Format=ext4 needs). The differences are what each
// tool adds.
func (b *bench) initrdBytes() error {
	dir := filepath.Join(b.work, "initrd")
	if err := os.MkdirAll(filepath.Join(dir, "no-conf.d"), 0o755); err != nil {
		return err
	}
	// A private copy of dracut's base directory with sprout's module, as
	// initrd/build-dracut-initrd.sh makes it.
	dracutDir := filepath.Join(dir, "dracut")
	if out, err := exec.Command("cp", "-a", "/usr/lib/dracut", dracutDir).CombinedOutput(); err != nil {
		return fmt.Errorf("cp: %w: %s", err, out)
	}
	mod := filepath.Join(dracutDir, "modules.d", "90sprout")
	if out, err := exec.Command("cp", "-rL", filepath.Join(b.cfg.repo, "initrd", "dracut", "90sprout"), mod).CombinedOutput(); err != nil {
		return fmt.Errorf("cp: %w: %s", err, out)
	}
	for _, f := range []string{"sprout.service"} {
		if out, err := exec.Command("cp", filepath.Join(b.cfg.repo, "systemd-units", f), mod).CombinedOutput(); err != nil {
			return fmt.Errorf("cp: %w: %s", err, out)
		}
	}
	const baseModules = "systemd systemd-initrd dracut-systemd udev-rules base fs-lib rootfs-block"
	build := func(name string, extraEnv []string, args ...string) (map[string]int64, int64, int64, error) {
		out := filepath.Join(dir, name+".img")
		b.progress("dracut: %s initrd", name)
		argv := append([]string{"--quiet", "--force", "--no-hostonly", "--no-hostonly-cmdline", "--reproducible",
			"--conf", "/dev/null", "--confdir", filepath.Join(dir, "no-conf.d"), "--no-kernel",
			"--no-early-microcode", "--nostrip", "--no-compress", "--tmpdir", dir}, args...)
		cmd := exec.CommandContext(b.ctx, "dracut", append(argv, out)...)
		cmd.Env = append(os.Environ(), extraEnv...)
		if o, err := cmd.CombinedOutput(); err != nil {
			return nil, 0, 0, fmt.Errorf("dracut %s: %w\n%s", name, err, tail(string(o), 3000))
		}
		files, err := cpioFiles(out)
		if err != nil {
			return nil, 0, 0, err
		}
		st, err := os.Stat(out)
		if err != nil {
			return nil, 0, 0, err
		}
		gz, err := gzipSize(out)
		return files, st.Size(), gz, err
	}
	base, baseSize, baseGz, err := build("base", nil, "--modules", baseModules)
	if err != nil {
		return err
	}
	sp, spSize, spGz, err := build("sprout", []string{"dracutbasedir=" + dracutDir, "sprout_binary=" + b.sprout.path, "sprout_definitions=" + b.defsExt4},
		"--modules", baseModules+" sprout")
	if err != nil {
		return err
	}
	rp, rpSize, rpGz, err := build("systemd-repart", nil, "--modules", baseModules+" systemd-repart",
		"--install", "mke2fs mkfs.ext4", "--include", b.defsExt4, "/etc/repart.d")
	if err != nil {
		return err
	}

	sCat, sList, err := categorise(added(base, sp), b.sprout.path)
	if err != nil {
		return err
	}
	rCat, rList, err := categorise(added(base, rp), b.repart.path)
	if err != nil {
		return err
	}
	b.rows = append(b.rows,
		row{what: "Bytes added to a dracut systemd initrd (uncompressed image), modules as shipped",
			sprout: bytesStr(spSize - baseSize), repart: bytesStr(rpSize - baseSize), ratio: ratioStr(spSize-baseSize, rpSize-baseSize)},
		row{what: "… the same, gzip -6 of the whole initrd",
			sprout: bytesStr(spGz - baseGz), repart: bytesStr(rpGz - baseGz), ratio: ratioStr(spGz-baseGz, rpGz-baseGz)},
		row{what: "… of which the tool (binary + libraries the base initrd lacks)",
			sprout: bytesStr(sCat["tool"]), repart: bytesStr(rCat["tool"]), ratio: ratioStr(sCat["tool"], rCat["tool"])},
		row{what: "… of which mkfs tools and their libraries",
			sprout: bytesStr(sCat["mkfs"]), repart: bytesStr(rCat["mkfs"]), ratio: ratioStr(sCat["mkfs"], rCat["mkfs"])},
		row{what: "… of which units, definitions, helpers",
			sprout: bytesStr(sCat["other"]), repart: bytesStr(rCat["other"]), ratio: ratioStr(sCat["other"], rCat["other"])},
	)
	b.appendix = append(b.appendix,
		"Files sprout's dracut module adds to the base initrd:\n\n```\n"+strings.Join(sList, "\n")+"\n```",
		"Files dracut's systemd-repart module (+ mke2fs) adds to the base initrd:\n\n```\n"+strings.Join(rList, "\n")+"\n```")
	return nil
}

func ratioStr(a, b int64) string {
	if b == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", float64(a)/float64(b))
}

// added lists the files of with that base lacks (or that differ in size).
func added(base, with map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for name, size := range with {
		if s, ok := base[name]; !ok || s != size {
			out[name] = size
		}
	}
	return out
}

// categorise splits added initrd files into the tool itself (the binary
// and the libraries of its ldd closure), mkfs tools (and the libraries
// only they load), and everything else; list is "size path [category]",
// largest first.
func categorise(files map[string]int64, binary string) (map[string]int64, []string, error) {
	toolLibs, err := lddClosure(binary)
	if err != nil {
		return nil, nil, err
	}
	toolNames := map[string]bool{filepath.Base(binary): true}
	for _, l := range toolLibs {
		for _, n := range l.names {
			toolNames[n] = true
		}
	}
	mkfsNames := map[string]bool{}
	for name := range files {
		base := filepath.Base(name)
		if strings.HasPrefix(base, "mkfs.") || base == "mke2fs" {
			mkfsNames[base] = true
			libs, err := lddClosure("/" + name)
			if err != nil {
				continue // a dangling link in the host's layout; sized as listed
			}
			for _, l := range libs {
				for _, n := range l.names {
					mkfsNames[n] = true
				}
			}
		}
	}
	cat := map[string]int64{}
	var names []string
	for name := range files {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int { return int(files[b] - files[a]) })
	var list []string
	for _, name := range names {
		base := filepath.Base(name)
		c := "other"
		switch {
		case toolNames[base]:
			c = "tool"
		case mkfsNames[base]:
			c = "mkfs"
		}
		cat[c] += files[name]
		list = append(list, fmt.Sprintf("%10d  %-70s [%s]", files[name], name, c))
	}
	return cat, list, nil
}

// cpioFiles reads an uncompressed initrd (one or more newc cpio archives)
// and returns its regular files and symlinks with their sizes.
func cpioFiles(path string) (map[string]int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	files := map[string]int64{}
	pos := 0
	for pos+110 <= len(data) {
		if string(data[pos:pos+6]) != "070701" {
			pos++ // padding between concatenated archives
			continue
		}
		field := func(i int) (int64, error) {
			return strconv.ParseInt(string(data[pos+6+8*i:pos+14+8*i]), 16, 64)
		}
		mode, err1 := field(1)
		size, err2 := field(6)
		nameSize, err3 := field(11)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("%s: bad cpio header at %d: %w", path, pos, err)
		}
		nameStart := pos + 110
		if nameStart+int(nameSize) > len(data) {
			return nil, fmt.Errorf("%s: truncated cpio at %d", path, pos)
		}
		name := strings.TrimRight(string(data[nameStart:nameStart+int(nameSize)]), "\x00")
		dataStart := (nameStart + int(nameSize) + 3) &^ 3
		if name == "TRAILER!!!" {
			pos = dataStart
			continue
		}
		if t := mode & 0o170000; t == 0o100000 || t == 0o120000 {
			files[strings.TrimPrefix(name, "./")] = size
		}
		pos = (dataStart + int(size) + 3) &^ 3
	}
	return files, nil
}

func gzipSize(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var c counter
	zw, err := gzip.NewWriterLevel(&c, 6)
	if err != nil {
		return 0, err
	}
	if _, err := io.Copy(zw, f); err != nil {
		return 0, err
	}
	err = zw.Close()
	return c.n, err
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func bytesStr(n int64) string {
	switch {
	case n >= 1<<30 || n <= -(1<<30):
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20 || n <= -(1<<20):
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10 || n <= -(1<<10):
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
