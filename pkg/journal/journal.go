// Package journal sends sprout's messages to systemd: structured entries
// over journald's native protocol and status lines over sd_notify.
//
// It speaks the same wire format as go-systemd's journal and daemon
// packages (which sprout used before), but on plain datagram sockets from
// golang.org/x/sys/unix: those packages import net, whose initialisation
// and runtime poller every boot's no-op run paid for (docs/benchmarks.md).
//
// The formats, from systemd's documentation (systemd.journal-fields(7),
// sd_journal_sendv(3), sd_notify(3) and the "Native Journal Protocol"
// page): one datagram per entry to /run/systemd/journal/socket, each field
// "NAME=value\n", or "NAME\n", the value's length as a little-endian
// 64-bit number, the value and "\n" when the value holds a newline. An
// entry too big for a datagram goes in a sealed memfd passed with
// SCM_RIGHTS. A status is one datagram with the text "STATUS=…" to the
// socket named by $NOTIFY_SOCKET ("@" starts an abstract name).
package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Priority is a syslog priority (PRIORITY= field).
type Priority int

// The priorities sprout uses, as in syslog(3).
const (
	PriErr    Priority = 3
	PriNotice Priority = 5
	PriInfo   Priority = 6
)

// SocketPath is journald's native socket.
const SocketPath = "/run/systemd/journal/socket"

// IsJournalStream reports whether fd (2, standard error) is connected to
// the journal: systemd sets $JOURNAL_STREAM to "DEV:INODE" of the stream
// it gives a service (env is its value), and the check is that fd is
// still that stream.
func IsJournalStream(fd int, env string) bool {
	devStr, inoStr, ok := strings.Cut(env, ":")
	if !ok {
		return false
	}
	dev, err1 := strconv.ParseUint(devStr, 10, 64)
	ino, err2 := strconv.ParseUint(inoStr, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false
	}
	return st.Dev == dev && st.Ino == ino
}

// Entry encodes one journal entry: PRIORITY, MESSAGE, then the other
// fields sorted by name. Field names must be valid journal field names
// (upper case letters, digits and "_", not starting with "_").
func Entry(msg string, prio Priority, fields map[string]string) ([]byte, error) {
	b := make([]byte, 0, 64+len(msg))
	b = appendField(b, "PRIORITY", strconv.Itoa(int(prio)))
	b = appendField(b, "MESSAGE", msg)
	names := make([]string, 0, len(fields))
	for k := range fields {
		if !validName(k) {
			return nil, fmt.Errorf("journal field name %q is not valid", k)
		}
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		b = appendField(b, k, fields[k])
	}
	return b, nil
}

func appendField(b []byte, name, value string) []byte {
	b = append(b, name...)
	if !strings.Contains(value, "\n") {
		b = append(b, '=')
		b = append(b, value...)
		return append(b, '\n')
	}
	b = append(b, '\n')
	b = binary.LittleEndian.AppendUint64(b, uint64(len(value)))
	b = append(b, value...)
	return append(b, '\n')
}

func validName(name string) bool {
	if name == "" || name[0] == '_' {
		return false
	}
	for _, c := range []byte(name) {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// Send sends one entry to journald's socket at path (SocketPath outside
// tests).
func Send(path, msg string, prio Priority, fields map[string]string) error {
	data, err := Entry(msg, prio, fields)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("journal socket: %w", err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrUnix{Name: path}
	err = unix.Sendmsg(fd, data, nil, to, 0)
	if !errors.Is(err, unix.EMSGSIZE) && !errors.Is(err, unix.ENOBUFS) {
		if err != nil {
			return fmt.Errorf("send to %s: %w", path, err)
		}
		return nil
	}
	// Too big for one datagram: pass it in a sealed memfd instead.
	mfd, err := unix.MemfdCreate("journal-entry", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return fmt.Errorf("journal entry of %d bytes: memfd: %w", len(data), err)
	}
	defer unix.Close(mfd)
	for rest := data; len(rest) > 0; {
		n, err := unix.Write(mfd, rest)
		if err != nil {
			return fmt.Errorf("journal entry of %d bytes: write memfd: %w", len(data), err)
		}
		rest = rest[n:]
	}
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(uintptr(mfd), unix.F_ADD_SEALS, seals); err != nil {
		return fmt.Errorf("journal entry of %d bytes: seal memfd: %w", len(data), err)
	}
	if err := unix.Sendmsg(fd, nil, unix.UnixRights(mfd), to, 0); err != nil {
		return fmt.Errorf("send to %s: %w", path, err)
	}
	return nil
}

// Notify sends state ("STATUS=…") to the service manager's socket, the
// value of $NOTIFY_SOCKET; with none ("") it does nothing.
func Notify(socket, state string) error {
	if socket == "" {
		return nil
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("notify socket: %w", err)
	}
	defer unix.Close(fd)
	// unix.SockaddrUnix turns a leading "@" into the abstract namespace.
	if err := unix.Sendto(fd, []byte(state), 0, &unix.SockaddrUnix{Name: socket}); err != nil {
		return fmt.Errorf("notify %s: %w", socket, err)
	}
	return nil
}
