package repartd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/google/uuid"
	"github.com/sprout-initrd/sprout/pkg/compat"
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
		seen := map[string]bool{}
		for _, d := range o.Dirs {
			if !seen[d] {
				seen[d] = true
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
	taken := map[string]bool{} // names decided: found or masked
	var out []confFile
	for _, dir := range dirs {
		dir = filepath.Join(dir, subdir)
		entries, err := os.ReadDir(dir)
		if err != nil {
			// A missing directory, or a file where a directory should be,
			// holds no definitions (systemd skips both silently).
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				continue
			}
			return nil, &Error{File: dir, Msg: "cannot list definitions directory", Err: err}
		}
		for _, e := range entries {
			name := e.Name()
			if !strings.HasSuffix(name, ".conf") || strings.HasPrefix(name, ".") || taken[name] {
				continue
			}
			path := filepath.Join(dir, name)
			st, err := os.Stat(path) // follows symlinks
			if err != nil {
				if main && errors.Is(err, fs.ErrNotExist) {
					continue // dangling symlink: skipped, hides nothing
				}
				if errors.Is(err, fs.ErrNotExist) {
					taken[name] = true // a drop-in name is taken even if dangling
					continue
				}
				return nil, &Error{File: path, Msg: "cannot inspect definition", Err: err}
			}
			switch {
			case isMask(st):
				taken[name] = true
			case st.Mode().IsRegular():
				taken[name] = true
				out = append(out, confFile{name, path})
			case main:
				// Directories, fifos, ...: skipped, hide nothing.
			default:
				return nil, &Error{File: path, Msg: fmt.Sprintf("drop-in is not a regular file (%s)", st.Mode().Type())}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// isMask: systemd treats an empty file or a character device (a symlink to
// /dev/null) as masking the name.
func isMask(st fs.FileInfo) bool {
	if st.Mode().IsRegular() {
		return st.Size() == 0
	}
	return st.Mode()&fs.ModeCharDevice != 0
}

func checkUniqueUUIDs(defs []Definition) error {
	first := map[uuid.UUID]int{}
	for i, d := range defs {
		if d.UUID == nil || *d.UUID == uuid.Nil {
			continue
		}
		if j, dup := first[*d.UUID]; dup {
			file, line := splitWhere(d.Where("UUID"))
			return &Error{File: file, Line: line, Key: "UUID",
				Msg: fmt.Sprintf("UUID=%s is also used by %s (%s); partition UUIDs must be unique",
					*d.UUID, defs[j].File, defs[j].Where("UUID"))}
		}
		first[*d.UUID] = i
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
