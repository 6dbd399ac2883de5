package journal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// listen opens a datagram socket at path, like journald's native socket
// and the service manager's notify socket, with SO_PASSCRED as they set it.
func listen(t *testing.T, path string) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		t.Fatal(err)
	}
	return fd
}

// receive reads one datagram. An entry passed as a memfd comes back as
// the memfd's contents, with sealed reporting whether journald would take
// it without copying (all four seals set).
func receive(t *testing.T, fd int) (data []byte, creds *unix.Ucred, passedFD, sealed bool) {
	t.Helper()
	buf := make([]byte, 1<<20)
	oob := make([]byte, 256)
	n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_DONTWAIT)
	if err != nil {
		t.Fatalf("nothing received: %v", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if c, err := unix.ParseUnixCredentials(&m); err == nil {
			creds = c
			continue
		}
		fds, err := unix.ParseUnixRights(&m)
		if err != nil || len(fds) != 1 {
			t.Fatalf("unexpected control message %+v", m.Header)
		}
		defer unix.Close(fds[0])
		seals, err := unix.FcntlInt(uintptr(fds[0]), unix.F_GET_SEALS, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
		// From the start: journald maps the file; the sender's offset is at its end.
		f := os.NewFile(uintptr(fds[0]), "memfd")
		if _, err := f.Seek(0, 0); err != nil {
			t.Fatal(err)
		}
		var content bytes.Buffer
		if _, err := content.ReadFrom(f); err != nil {
			t.Fatal(err)
		}
		return content.Bytes(), creds, true, seals&want == want
	}
	return buf[:n], creds, false, false
}

// parseEntry decodes the native protocol the way journald documents it:
// "NAME=value\n", or "NAME\n" + 64-bit little-endian length + value + "\n".
func parseEntry(t *testing.T, b []byte) []string {
	t.Helper()
	var fields []string
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			t.Fatalf("field without a newline: %q", b)
		}
		line := b[:nl]
		if eq := bytes.IndexByte(line, '='); eq >= 0 {
			fields = append(fields, string(line))
			b = b[nl+1:]
			continue
		}
		b = b[nl+1:]
		if len(b) < 8 {
			t.Fatalf("binary field %s without a length", line)
		}
		n := binary.LittleEndian.Uint64(b)
		b = b[8:]
		if uint64(len(b)) < n+1 || b[n] != '\n' {
			t.Fatalf("binary field %s: length %d does not fit", line, n)
		}
		fields = append(fields, string(line)+"="+string(b[:n]))
		b = b[n+1:]
	}
	return fields
}

func TestSendWritesNativeProtocolFields(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "socket")
	fd := listen(t, sock)

	err := Send(sock, "No changes.", PriInfo, map[string]string{
		"SYSLOG_IDENTIFIER": "sprout",
		"SPROUT_DEVICE":     "/dev/vda",
		"SPROUT_LABEL":      "two\nlines",
	})
	if err != nil {
		t.Fatal(err)
	}
	data, creds, passed, _ := receive(t, fd)
	if passed {
		t.Fatal("a small entry was passed as a file")
	}
	if creds == nil || int(creds.Pid) != os.Getpid() {
		t.Errorf("credentials %+v, want this process (journald takes _PID from them)", creds)
	}
	got := strings.Join(parseEntry(t, data), "|")
	want := "PRIORITY=6|MESSAGE=No changes.|SPROUT_DEVICE=/dev/vda|SPROUT_LABEL=two\nlines|SYSLOG_IDENTIFIER=sprout"
	if got != want {
		t.Errorf("fields\n got %q\nwant %q", got, want)
	}
	// The exact bytes of a value with a newline: name, newline, length, value, newline.
	if !bytes.Contains(data, []byte("SPROUT_LABEL\n\x09\x00\x00\x00\x00\x00\x00\x00two\nlines\n")) {
		t.Errorf("binary field not encoded as the protocol says: %q", data)
	}
}

func TestSendPassesBigEntriesInASealedMemfd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "socket")
	fd := listen(t, sock)
	msg := strings.Repeat("x", 4<<20) // more than a datagram may carry (the send buffer's size)

	if err := Send(sock, msg, PriErr, nil); err != nil {
		t.Fatal(err)
	}
	data, _, passed, sealed := receive(t, fd)
	if !passed || !sealed {
		t.Fatalf("entry of %d bytes: passed as fd %v, sealed %v; want a sealed memfd", len(msg), passed, sealed)
	}
	if f := parseEntry(t, data); len(f) != 2 || f[0] != "PRIORITY=3" || f[1] != "MESSAGE="+msg {
		t.Errorf("memfd entry decodes to %d fields, want PRIORITY=3 and the message", len(f))
	}
}

func TestSendRefusesInvalidFieldNames(t *testing.T) {
	for _, name := range []string{"", "_PID", "lower", "DASH-ED"} {
		if _, err := Entry("m", PriInfo, map[string]string{name: "v"}); err == nil {
			t.Errorf("field name %q accepted", name)
		}
	}
}

func TestSendFailsWithoutJournald(t *testing.T) {
	// The logger falls back to stderr on this error.
	if err := Send(filepath.Join(t.TempDir(), "absent"), "m", PriInfo, nil); err == nil {
		t.Error("send to a missing socket succeeded")
	}
}

func TestNotifySendsTheStateAsOneDatagram(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		t.Run(fmt.Sprintf("abstract=%v", abstract), func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "notify")
			env := name
			if abstract {
				name = fmt.Sprintf("\x00sprout-journal-test-%d", os.Getpid())
				env = "@" + name[1:]
			}
			fd := listen(t, name)
			if err := Notify(env, "STATUS=Applying changes to /dev/vda."); err != nil {
				t.Fatal(err)
			}
			data, creds, _, _ := receive(t, fd)
			if string(data) != "STATUS=Applying changes to /dev/vda." {
				t.Errorf("received %q", data)
			}
			if creds == nil || int(creds.Pid) != os.Getpid() {
				t.Errorf("credentials %+v, want this process (systemd checks NotifyAccess= by PID)", creds)
			}
		})
	}
}

func TestNotifyWithoutSocketDoesNothing(t *testing.T) {
	if err := Notify("", "STATUS=x"); err != nil {
		t.Error(err)
	}
}

func TestIsJournalStreamMatchesDeviceAndInode(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(w.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	fd := int(w.Fd())
	cases := map[string]bool{
		fmt.Sprintf("%d:%d", st.Dev, st.Ino):   true,
		fmt.Sprintf("%d:%d", st.Dev, st.Ino+1): false,
		"":                                     false, "garbage": false, "1:x": false,
	}
	for env, want := range cases {
		if got := IsJournalStream(fd, env); got != want {
			t.Errorf("JOURNAL_STREAM=%q: %v, want %v", env, got, want)
		}
	}
}
