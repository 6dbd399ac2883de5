package cli

import (
	"fmt"
	"io"
	"strconv"

	"github.com/sprout-initrd/sprout/pkg/journal"
	"github.com/sprout-initrd/sprout/pkg/plan"
)

// logger writes sprout's messages: plain lines on a terminal or in a
// pipe, structured journal entries when stderr is connected to the
// journal (a systemd service, as in the initrd). Every message is also
// the service's status line for systemctl when systemd asked for it.
type logger struct {
	w       io.Writer
	journal bool   // stderr is the journal's stream: send structured entries
	notify  string // the service manager's socket ($NOTIFY_SOCKET), or ""
	device  string
}

// newLogger writes to stderr; journal and notify come from the
// environment, read once where the run is wired up (Main).
func newLogger(stderr io.Writer, journal bool, notify string) *logger {
	return &logger{w: stderr, journal: journal, notify: notify}
}

// log sends one message with optional journal fields (SPROUT_ is
// prepended to their names).
func (l *logger) log(prio journal.Priority, msg string, fields map[string]string) {
	if l.journal {
		vars := map[string]string{"SYSLOG_IDENTIFIER": "sprout"}
		if l.device != "" {
			vars["SPROUT_DEVICE"] = l.device
		}
		for k, v := range fields {
			vars["SPROUT_"+k] = v
		}
		if journal.Send(journal.SocketPath, msg, prio, vars) == nil {
			journal.Notify(l.notify, "STATUS="+msg)
			return
		}
	}
	fmt.Fprintln(l.w, msg)
	journal.Notify(l.notify, "STATUS="+msg)
}

func (l *logger) infof(format string, args ...any) {
	l.log(journal.PriInfo, fmt.Sprintf(format, args...), nil)
}

func (l *logger) errorf(format string, args ...any) {
	l.log(journal.PriErr, fmt.Sprintf(format, args...), nil)
}

// partitions logs one structured entry per partition the run created or
// grew, so the journal answers "what did the first boot do" by field.
func (l *logger) partitions(p *plan.Plan, node func(int) string) {
	for _, r := range p.Partitions {
		if r.Activity == plan.Unchanged || r.Deferred {
			continue
		}
		msg := fmt.Sprintf("Partition %d (%s, %q): %s, %s → %s.", r.Index, node(r.Index), r.Label, r.Activity,
			plan.FormatBytes(r.OldSize), plan.FormatBytes(r.NewSize))
		l.log(journal.PriNotice, msg, map[string]string{
			"PARTITION": strconv.Itoa(r.Index), "NODE": node(r.Index), "LABEL": r.Label,
			"PARTUUID": r.UUID.String(), "ACTIVITY": string(r.Activity), "FORMAT": r.Format,
			"OFFSET":   strconv.FormatUint(r.Offset, 10),
			"OLD_SIZE": strconv.FormatUint(r.OldSize, 10), "NEW_SIZE": strconv.FormatUint(r.NewSize, 10),
		})
	}
}
