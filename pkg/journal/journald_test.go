package journal

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/pkg/blockdev/blockdevtest"
)

// The real journald (systemd 252 here) must store what Send sends, field
// for field, in a datagram and in a memfd. It runs in a private mount
// namespace with tmpfs over /run and /var/log/journal, so the host sees
// nothing; this test binary, run again inside, is the sender.
func TestJournaldStoresWhatSendSends(t *testing.T) {
	blockdevtest.RequireRoot(t)
	journald := "/lib/systemd/systemd-journald"
	for _, tool := range []string{journald, "/usr/bin/journalctl", "/usr/bin/unshare"} {
		if _, err := os.Stat(tool); err != nil {
			if os.Getenv("SPROUT_REQUIRE_TOOLS") == "1" {
				t.Fatalf("%s missing (package systemd, util-linux), and SPROUT_REQUIRE_TOOLS=1 forbids skipping", tool)
			}
			t.Skipf("%s missing", tool)
		}
	}
	script := fmt.Sprintf(`set -e
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/log/journal 2>/dev/null || { mkdir -p /var/log/journal && mount -t tmpfs tmpfs /var/log/journal; }
mkdir -p /run/systemd/journal
%s >/dev/null 2>&1 &
pid=$!
for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
SPROUT_JOURNAL_SEND=1 %s >&2
sleep 0.3
kill $pid; wait $pid || true
journalctl -D /run/log/journal -o json --all --no-pager SYSLOG_IDENTIFIER=sprout-journal-test
`, journald, os.Args[0])
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
	small, big := got[0], got[1]
	want := map[string]string{"MESSAGE": "No changes.", "PRIORITY": "6", "SPROUT_DEVICE": "/dev/vda", "SPROUT_LABEL": "two\nlines", "_TRANSPORT": "journal"}
	for k, v := range want {
		if small[k] != v {
			t.Errorf("entry sent in a datagram: %s=%q, want %q", k, small[k], v)
		}
	}
	if m, _ := big["MESSAGE"].(string); len(m) != bigEntry || big["PRIORITY"] != "3" {
		t.Errorf("entry sent in a memfd: MESSAGE of %d bytes and PRIORITY %v, want %d bytes and 3", len(m), big["PRIORITY"], bigEntry)
	}
}

// bigEntry is more than a datagram may carry.
const bigEntry = 300000

// TestMain turns this test binary into the sender of
// TestJournaldStoresWhatSendSends when run with SPROUT_JOURNAL_SEND=1.
func TestMain(m *testing.M) {
	if os.Getenv("SPROUT_JOURNAL_SEND") != "1" {
		os.Exit(m.Run())
	}
	id := "sprout-journal-test"
	err := Send(SocketPath, "No changes.", PriInfo, map[string]string{"SYSLOG_IDENTIFIER": id, "SPROUT_DEVICE": "/dev/vda", "SPROUT_LABEL": "two\nlines"})
	if err == nil {
		err = Send(SocketPath, strings.Repeat("x", bigEntry), PriErr, map[string]string{"SYSLOG_IDENTIFIER": id})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}
