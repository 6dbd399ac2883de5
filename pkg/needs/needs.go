// Package needs describes what a file system format or an encryption mode
// needs from the system sprout runs on: the programs sprout starts, the
// libraries they load at run time, the kernel modules that make the result
// usable, and the distribution packages that ship them. The declarations
// in pkg/fstype and pkg/encryption fill it in; whatever builds an initrd
// reads it from there. It does no I/O.
package needs

// Package names the package that ships a program or library in each
// distribution sprout's users build on ("" where it is not recorded).
// Nixpkgs is the attribute of nixpkgs' package set (pkgs.e2fsprogs); the
// NixOS module takes the packages it puts into the initrd from there.
type Package struct {
	Debian, Fedora, Arch, Nixpkgs string
}

// Program is a program sprout starts, by its name in $PATH.
type Program struct {
	Name    string
	Package Package
}

// Library is a shared library a program loads at run time (dlopen), so
// that a walk of the program's ELF dependencies does not find it. Name is
// its soname, or a path under the library directory for a plugin
// ("cryptsetup/libcryptsetup-token-systemd-tpm2.so").
type Library struct {
	Name    string
	Package Package
}

// Module is a kernel module. Optional ones are often built into the
// kernel, or exist only on some architectures (aesni_intel).
type Module struct {
	Name     string
	Optional bool
}

// Set is everything one format or mode needs.
type Set struct {
	Programs  []Program
	Libraries []Library
	Modules   []Module
	// Files are host files a program reads when they exist (mke2fs's
	// /etc/mke2fs.conf), by absolute path.
	Files []string
}

// Plus is s with what o adds, each item once, in first-seen order.
func (s Set) Plus(o Set) Set {
	return Set{
		Programs:  union(s.Programs, o.Programs, func(p Program) string { return p.Name }),
		Libraries: union(s.Libraries, o.Libraries, func(l Library) string { return l.Name }),
		Modules:   union(s.Modules, o.Modules, func(m Module) string { return m.Name }),
		Files:     union(s.Files, o.Files, func(f string) string { return f }),
	}
}

func union[T any](a, b []T, key func(T) string) []T {
	var out []T
	seen := map[string]bool{}
	for _, list := range [][]T{a, b} {
		for _, x := range list {
			if k := key(x); !seen[k] {
				seen[k] = true
				out = append(out, x)
			}
		}
	}
	return out
}
