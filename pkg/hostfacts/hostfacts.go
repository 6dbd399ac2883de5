// Package hostfacts reads what Label='s % specifiers expand to from the
// running system and from --root: os-release, the machine ID, the boot ID,
// the host name, the kernel release, the architecture and the temporary
// directories. The repart.d parser only substitutes (sdvalue.Specifiers);
// the reading is here, done once per run and only when a label needs it.
package hostfacts

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/sprout-initrd/sprout/pkg/pollfree"
	"github.com/sprout-initrd/sprout/pkg/sdvalue"
	"golang.org/x/sys/unix"
)

// Read reads the specifier inputs. root is --root ("" when not given:
// then the files come from "/" and %T/%V honour $TMPDIR, $TEMP and $TMP
// as in 252, which ignores them whenever --root is given).
func Read(root string, getenv func(string) string) sdvalue.SystemFacts {
	var f sdvalue.SystemFacts
	base := root
	if base == "" {
		base = "/"
	}
	f.OSRelease, f.OSReleaseErr = readOSRelease(base)
	f.MachineID, f.MachineIDErr = readMachineID(base)
	if b, err := pollfree.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		f.BootID = strings.ReplaceAll(strings.TrimSpace(string(b)), "-", "")
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		f.Hostname = unix.ByteSliceToString(u.Nodename[:])
		f.KernelRelease = unix.ByteSliceToString(u.Release[:])
	}
	if f.Hostname == "" || f.Hostname == "(none)" {
		// An unset kernel host name (early in an initrd): 252 falls back
		// to the default host name, which is "localhost" unless the
		// running system's os-release says otherwise.
		f.Hostname = "localhost"
		if hostOS, err := readOSRelease("/"); err == nil && hostOS["DEFAULT_HOSTNAME"] != "" {
			f.Hostname = hostOS["DEFAULT_HOSTNAME"]
		}
	}
	f.Arch = SystemdArch(runtime.GOARCH)
	f.TmpDir, f.VarTmpDir = "/tmp", "/var/tmp"
	if root == "" {
		if d := tmpFromEnv(getenv); d != "" {
			f.TmpDir, f.VarTmpDir = d, d
		}
	}
	return f
}

// tmpFromEnv returns the first of $TMPDIR, $TEMP, $TMP that is an
// absolute, normalized path to a directory, as systemd's tmp_dir() does.
func tmpFromEnv(getenv func(string) string) string {
	for _, name := range []string{"TMPDIR", "TEMP", "TMP"} {
		d := getenv(name)
		if !path.IsAbs(d) || !isNormalized(d) {
			continue
		}
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
	}
	return ""
}

// isNormalized: no "." or ".." components and no "//" (a trailing slash
// is allowed; 252 keeps it in the expansion).
func isNormalized(p string) bool {
	if strings.Contains(p, "//") {
		return false
	}
	for _, c := range strings.Split(p, "/") {
		if c == "." || c == ".." {
			return false
		}
	}
	return true
}

// SystemdArch maps a Go architecture to systemd's name for it
// (ConditionArchitecture= in systemd.unit(5)).
func SystemdArch(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86-64"
	case "386":
		return "x86"
	case "arm64":
		return "arm64"
	case "arm":
		return "arm"
	case "riscv64":
		return "riscv64"
	case "ppc64le":
		return "ppc64-le"
	case "ppc64":
		return "ppc64"
	case "s390x":
		return "s390x"
	case "loong64":
		return "loongarch64"
	case "mips64le":
		return "mips64-le"
	case "mips64":
		return "mips64"
	case "mipsle":
		return "mips-le"
	case "mips":
		return "mips"
	}
	return goarch
}

// ReadOSRelease reads the os-release of root (etc/os-release, else
// usr/lib/os-release), as systemd does.
func ReadOSRelease(root string) (map[string]string, error) { return readOSRelease(root) }

func readOSRelease(root string) (map[string]string, error) {
	var firstErr error
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		host, err := chaseUnder(root, p)
		if err == nil {
			var data []byte
			data, err = pollfree.ReadFile(host)
			if err == nil {
				return parseEnvFile(data), nil
			}
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, fmt.Errorf("no os-release under %s: %w", root, firstErr)
}

func readMachineID(root string) (string, error) {
	host, err := chaseUnder(root, "/etc/machine-id")
	if err != nil {
		return "", fmt.Errorf("machine ID: %w", err)
	}
	b, err := pollfree.ReadFile(host)
	if err != nil {
		return "", fmt.Errorf("machine ID: %w", err)
	}
	id := strings.TrimSuffix(string(b), "\n")
	if len(id) != 32 || strings.Trim(strings.ToLower(id), "0123456789abcdef") != "" {
		return "", fmt.Errorf("%s holds no machine ID (%q)", host, id)
	}
	return strings.ToLower(id), nil
}

// chaseUnder resolves p (absolute, inside root) following symlinks as if
// root were "/": an absolute link target and ".." stay inside root, as
// systemd's chase with a root does. It returns the path on the host.
func chaseUnder(root, p string) (string, error) {
	todo := strings.Split(strings.Trim(p, "/"), "/")
	done := "/"
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			done = path.Dir(done)
			continue
		}
		next := path.Join(done, c)
		st, err := os.Lstat(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if st.Mode()&os.ModeSymlink == 0 {
			done = next
			continue
		}
		if hops++; hops > 32 {
			return "", fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			done = "/"
		}
		todo = append(strings.Split(strings.Trim(target, "/"), "/"), todo...)
	}
	return filepath.Join(root, done), nil
}

// parseEnvFile reads os-release(5) syntax: KEY=VALUE lines, "#" comments,
// values unquoted, in single quotes (literal) or double quotes (backslash
// escapes \" \\ \$ \`), with surrounding blanks dropped.
func parseEnvFile(data []byte) map[string]string {
	out := map[string]string{}
	for _, line := range bytes.Split(data, []byte("\n")) {
		l := strings.TrimSpace(string(line))
		if l == "" || l[0] == '#' || l[0] == ';' {
			continue
		}
		key, raw, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		key = strings.TrimSpace(key)
		if v, err := unquoteEnv(strings.TrimSpace(raw)); err == nil {
			out[key] = v
		}
	}
	return out
}

func unquoteEnv(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return "", errors.New("unterminated quote")
			}
			b.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return "", errors.New("unterminated quote")
			}
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
