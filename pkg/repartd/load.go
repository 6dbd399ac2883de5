package repartd

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/pollfree"
	"github.com/sprout-initrd/sprout/pkg/sdvalue"
)

// Options says where Load looks for definitions.
type Options struct {
	// Root is --root: the tree the default directories are taken from.
	// "" means "/".
	Root string
	// Dirs is --definitions= (repeatable). When it is not empty it replaces
	// the default directories and is used as given, not under Root.
	Dirs []string
	// Specifiers are the values of Label='s % specifiers
	// (sdvalue.LazySpecifiers over hostfacts.Read).
	Specifiers sdvalue.Specifiers
	// Compat is the systemd version the run follows (--compat=): its reading
	// of the files (sizes, defaults), and a key or value added after it is
	// an error naming file:line and the version that added it (the zero
	// Version: compat.Default).
	Compat compat.Version
}

// SearchPath returns where systemd-repart looks for repart.d files by
// default, highest priority first.
func SearchPath() []string {
	return []string{"/etc/repart.d", "/run/repart.d", "/usr/local/lib/repart.d", "/usr/lib/repart.d"}
}

// dirs returns the directories Load reads, highest priority first.
func (o Options) dirs() []string {
	if len(o.Dirs) > 0 {
		var out []string
		for _, d := range o.Dirs {
			if !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
		return out
	}
	root := o.Root
	if root == "" {
		root = "/"
	}
	out := SearchPath()
	for i, d := range out {
		out[i] = filepath.Join(root, d)
	}
	return out
}

// Load finds and parses all definitions, sorted by file name.
//
// Like systemd-repart 252 it takes the *.conf files of all directories;
// when two directories have a file of the same name, the one in the
// earlier directory wins. A file that is empty or a symlink to /dev/null
// masks that name in all later directories. Entries that are not regular
// files (directories, dangling symlinks) are skipped and hide nothing.
// Missing directories are skipped.
//
// Drop-ins <name>.conf.d/*.conf are collected the same way from all the
// directories and applied in file-name order after the main file.
// Deliberate difference: systemd-repart 252 looks for drop-ins in the
// default directories without the --root prefix (a bug fixed later
// upstream, so with --root it reads the host's drop-ins and ignores the
// root's); sprout reads them from under Root, next to the definitions.
//
// Explicit UUID= values must be unique across definitions (repart 252
// would write the duplicates); UUID=null is exempt.
func Load(opts Options) ([]Definition, error) {
	dirs := opts.dirs()
	files, err := collectConf(dirs, "", true)
	if err != nil {
		return nil, err
	}
	defs := make([]Definition, 0, len(files))
	for _, f := range files {
		dropIns, err := collectConf(dirs, f.name+".d", false)
		if err != nil {
			return nil, err
		}
		paths := make([]string, len(dropIns))
		for i, d := range dropIns {
			paths[i] = d.path
		}
		def, err := parseFor(f.path, paths, opts.Specifiers, opts.Compat.OrDefault())
		if err != nil {
			return nil, err
		}
		defs = append(defs, def)
	}
	if err := checkUniqueUUIDs(defs); err != nil {
		return nil, err
	}
	if err := resolveSupplements(defs); err != nil {
		return nil, err
	}
	return defs, nil
}

type confFile struct {
	name string // basename
	path string
}

// collectConf lists the *.conf files named in subdir of each of dirs,
// first directory winning per name, masked and non-regular entries
// resolved as described at Load, sorted by name. Drop-in directories
// (main == false) differ from the main directories in one way, as in
// systemd: their entries are not checked before reading, so anything that
// is neither a file nor a mask is an error.
func collectConf(dirs []string, subdir string, main bool) ([]confFile, error) {
	// Every boot reads the definitions, so this uses plain system calls
	// (pkg/pollfree) and small slices, not os.ReadDir, os.Stat, maps and
	// errors.Is: in a fresh process the first run of each costs more than
	// the system calls themselves (errors.Is, with its interface check,
	// more than a stat; docs/benchmarks.md).
	var taken []string // names decided: found or masked
	var out []confFile
	for _, dir := range dirs {
		dir = filepath.Join(dir, subdir)
		names, err := pollfree.ReadDirNames(dir)
		if err != nil {
			// A missing directory, or a file where a directory should be,
			// holds no definitions (systemd skips both silently).
			if e := pollfree.Errno(err); e == syscall.ENOENT || e == syscall.ENOTDIR {
				continue
			}
			return nil, &Error{File: dir, Msg: "cannot list definitions directory", Err: err}
		}
		for _, name := range names {
			if !strings.HasSuffix(name, ".conf") || strings.HasPrefix(name, ".") || slices.Contains(taken, name) {
				continue
			}
			path := join(dir, name)
			st, err := pollfree.Stat(path) // follows symlinks
			if err != nil {
				if pollfree.Errno(err) == syscall.ENOENT {
					if !main {
						taken = append(taken, name) // a drop-in name is taken even if dangling
					}
					continue // dangling symlink: skipped, hides nothing
				}
				return nil, &Error{File: path, Msg: "cannot inspect definition", Err: err}
			}
			switch {
			case isMask(&st):
				taken = append(taken, name)
			case st.Mode&syscall.S_IFMT == syscall.S_IFREG:
				taken = append(taken, name)
				out = append(out, confFile{name, path})
			case main:
				// Directories, fifos, ...: skipped, hide nothing.
			default:
				var kind fs.FileMode
				if fi, err := os.Stat(path); err == nil {
					kind = fi.Mode().Type()
				}
				return nil, &Error{File: path, Msg: fmt.Sprintf("drop-in is not a regular file (%s)", kind)}
			}
		}
	}
	// By name; an insertion sort, as there are few (and it adds no sort
	// code to the binary).
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].name < out[j-1].name; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, nil
}

// join is filepath.Join(dir, name) for a clean dir and a name that is one
// element, without Join's cleaning pass.
func join(dir, name string) string {
	switch dir {
	case ".":
		return name
	case "/":
		return dir + name
	}
	return dir + "/" + name
}

// isMask: systemd treats an empty file or a character device (a symlink to
// /dev/null) as masking the name.
func isMask(st *syscall.Stat_t) bool {
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		return st.Size == 0
	case syscall.S_IFCHR:
		return true
	}
	return false
}

func checkUniqueUUIDs(defs []Definition) error {
	for i, d := range defs {
		if d.UUID == nil || *d.UUID == uuid.Nil {
			continue
		}
		for j := range defs[:i] {
			if e := defs[j].UUID; e == nil || *e != *d.UUID {
				continue
			}
			file, line := splitWhere(d.Where("UUID"))
			return &Error{File: file, Line: line, Key: "UUID",
				Msg: fmt.Sprintf("UUID=%s is also used by %s (%s); partition UUIDs must be unique",
					*d.UUID, defs[j].File, defs[j].Where("UUID"))}
		}
	}
	return nil
}

// splitWhere splits a "path:line" string from Definition.Lines.
func splitWhere(where string) (string, int) {
	i := strings.LastIndexByte(where, ':')
	if i < 0 {
		return where, 0
	}
	n, err := strconv.Atoi(where[i+1:])
	if err != nil {
		return where, 0
	}
	return where[:i], n
}
