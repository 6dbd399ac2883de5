package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/sprout-initrd/sprout/tests/harness"
	"golang.org/x/sys/unix"
)

// entry is what the fake journal received.
type entry struct {
	msg  string
	prio journal.Priority
	vars map[string]string
}

// fakeLogger records journal entries and STATUS= lines instead of
// sending them.
func fakeLogger(toJournal bool) (*logger, *[]entry, *[]string, *strings.Builder) {
	var entries []entry
	var states []string
	var stderr strings.Builder
	l := &logger{w: &stderr, journal: toJournal,
		send: func(msg string, prio journal.Priority, vars map[string]string) error {
			entries = append(entries, entry{msg, prio, vars})
			return nil
		},
		notify: func(state string) { states = append(states, state) },
	}
	return l, &entries, &states, &stderr
}

func TestOutcomesCarryTheirMessageID(t *testing.T) {
	l, entries, states, stderr := fakeLogger(true)
	l.device = "/dev/vda"
	l.outcome(journal.PriInfo, MessageNoChanges, "No changes.")
	l.infof("Applying changes to %s.", "/dev/vda")

	if len(*entries) != 2 || stderr.Len() != 0 {
		t.Fatalf("entries %+v, stderr %q: want two journal entries and nothing on stderr", *entries, stderr)
	}
	e := (*entries)[0]
	if e.msg != "No changes." || e.vars["MESSAGE_ID"] != MessageNoChanges || e.vars["SPROUT_DEVICE"] != "/dev/vda" ||
		e.vars["SYSLOG_IDENTIFIER"] != "sprout" {
		t.Errorf("outcome entry %+v", e)
	}
	if _, ok := (*entries)[1].vars["MESSAGE_ID"]; ok {
		t.Errorf("an ordinary message has a MESSAGE_ID: %+v", (*entries)[1])
	}
	if want := []string{"STATUS=No changes.", "STATUS=Applying changes to /dev/vda."}; strings.Join(*states, "|") != strings.Join(want, "|") {
		t.Errorf("status lines %q, want %q", *states, want)
	}
}

func TestMessageIDsAreDistinct128BitIDs(t *testing.T) {
	seen := map[string]bool{}
	for _, id := range []string{MessageCreated, MessageGrown, MessageNoChanges, MessageRefused, MessageFailed,
		MessageRepaired, MessageFactoryReset} {
		if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" || seen[id] {
			t.Errorf("MESSAGE_ID %q: want 32 lower-case hex digits, unique", id)
		}
		seen[id] = true
	}
}

func TestWithoutTheJournalMessagesGoToStderr(t *testing.T) {
	l, entries, _, stderr := fakeLogger(false)
	l.outcome(journal.PriErr, MessageRefused, "sprout: no")
	if len(*entries) != 0 || stderr.String() != "sprout: no\n" {
		t.Errorf("entries %+v, stderr %q", *entries, stderr)
	}
}

// A long step's line reaches the console: in the unit stderr is
// journal+console, and a structured entry would reach only the journal.
func TestConsoleLinesGoToStderrAndStatusInTheUnit(t *testing.T) {
	l, entries, states, stderr := fakeLogger(true)
	l.console("Discarding partition 4: 2.0G done.")
	if len(*entries) != 0 || stderr.String() != "Discarding partition 4: 2.0G done.\n" ||
		strings.Join(*states, "") != "STATUS=Discarding partition 4: 2.0G done." {
		t.Errorf("entries %+v, stderr %q, status %q", *entries, stderr, *states)
	}
}

// The real journald (systemd 252 here) must store what the logger sends
// through go-systemd, MESSAGE_ID and fields included, and the service
// manager's socket must get the STATUS= line from this process. journald
// runs in a private mount namespace with tmpfs over /run and
// /var/log/journal, so the host sees nothing; this test binary, run again
// inside, is the sender.
func TestJournaldStoresWhatTheLoggerSends(t *testing.T) {
	harness.RequireRoot(t, "journald in a mount namespace")
	journald := "/lib/systemd/systemd-journald"
	harness.RequireTools(t, journald, "/usr/bin/journalctl", "/usr/bin/unshare") // packages systemd, util-linux
	notify := filepath.Join(t.TempDir(), "notify")
	fd := listenDatagram(t, notify)
	script := fmt.Sprintf(`set -e
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/log/journal 2>/dev/null || { mkdir -p /var/log/journal && mount -t tmpfs tmpfs /var/log/journal; }
mkdir -p /run/systemd/journal
%s >/dev/null 2>&1 &
pid=$!
for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
SPROUT_LOGGER_SEND=1 NOTIFY_SOCKET=%s %s >&2
sleep 0.3
kill $pid; wait $pid || true
journalctl -D /run/log/journal -o json --all --no-pager SYSLOG_IDENTIFIER=sprout
`, journald, notify, os.Args[0])
	out, err := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script).Output()
	if err != nil {
		t.Fatalf("journald in a private namespace: %v\n%s", err, out)
	}
	var got []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("journalctl output %q: %v", line, err)
		}
		got = append(got, e)
	}
	if len(got) != 2 {
		t.Fatalf("journald stored %d entries, want 2:\n%s", len(got), out)
	}
	want := map[string]string{"MESSAGE": "Partition 4 (/dev/vda4, \"two\\nlines\"): create, 0B → 1.0M.", "PRIORITY": "5",
		"MESSAGE_ID": MessageCreated, "SPROUT_DEVICE": "/dev/vda", "SPROUT_LABEL": "two\nlines", "_TRANSPORT": "journal"}
	for k, v := range want {
		if got[0][k] != v {
			t.Errorf("entry: %s=%q, want %q", k, got[0][k], v)
		}
	}
	if m, _ := got[1]["MESSAGE"].(string); len(m) != bigEntry || got[1]["MESSAGE_ID"] != MessageFailed {
		t.Errorf("big entry: MESSAGE of %d bytes, MESSAGE_ID %v; want %d bytes and %s", len(m), got[1]["MESSAGE_ID"], bigEntry, MessageFailed)
	}
	buf := make([]byte, 1<<20)
	var states []string
	for {
		n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		if err != nil {
			break
		}
		states = append(states, string(buf[:n]))
	}
	if len(states) == 0 || !strings.HasPrefix(states[0], "STATUS=Partition 4 ") {
		t.Errorf("the notify socket received %.60q, want the first entry's STATUS= line", states)
	}
}

// bigEntry is more than a datagram may carry.
const bigEntry = 300000

func listenDatagram(t *testing.T, path string) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	return fd
}

// TestMain turns this test binary into the sender of
// TestJournaldStoresWhatTheLoggerSends when run with SPROUT_LOGGER_SEND=1.
func TestMain(m *testing.M) {
	if os.Getenv("SPROUT_LOGGER_SEND") != "1" {
		os.Exit(m.Run())
	}
	l := newLogger(os.Stderr, true)
	l.device = "/dev/vda"
	l.log(journal.PriNotice, "Partition 4 (/dev/vda4, \"two\\nlines\"): create, 0B → 1.0M.",
		map[string]string{"MESSAGE_ID": MessageCreated, "LABEL": "two\nlines"})
	l.outcome(journal.PriErr, MessageFailed, strings.Repeat("x", bigEntry))
	os.Exit(0)
}
