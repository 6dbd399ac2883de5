package cli

import (
	"fmt"
	"io"
	"strconv"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/coreos/go-systemd/v22/journal"
	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/plan"
)

// The MESSAGE_ID= of the journal entries that say how a run ended, one
// fixed 128-bit ID per outcome, so that `journalctl MESSAGE_ID=…` finds,
// say, every boot that created partitions or was refused (sprout(8)).
const (
	// MessageCreated: one entry per partition a run created.
	MessageCreated = "c08aa93156924e5180b7e50cffe26079"
	// MessageGrown: one entry per existing partition a run grew.
	MessageGrown = "7c77cee6404040869ded74f70e7e0b9c"
	// MessageNoChanges: "No changes.", the run had nothing to do.
	MessageNoChanges = "77db3d299c764d0db3b75605118db43c"
	// MessageRefused: the run stopped before its first write.
	MessageRefused = "a909d988746b42a282e7ce7efd53bb77"
	// MessageFailed: the run failed after it had started writing.
	MessageFailed = "2ba5a9a62523464d9eafc789f221317c"
	// MessageRepaired: a damaged GPT copy was rewritten.
	MessageRepaired = "3566894c0dbe4da48e4c2e09713787a4"
	// MessageFactoryReset: partitions were erased and made anew.
	MessageFactoryReset = "975ea9ac84564ee3bd13c95e7d2d0e49"
)

// logger writes sprout's messages: plain lines on a terminal or in a
// pipe, structured journal entries when stderr is connected to the
// journal (a systemd service, as in the initrd). Every message is also
// the service's status line (STATUS=) when systemd asked for one
// ($NOTIFY_SOCKET, which the unit's NotifyAccess= makes it set).
type logger struct {
	w       io.Writer
	journal bool // stderr is the journal's stream: send structured entries
	device  string
	// send and notify reach systemd: go-systemd's journal.Send and
	// daemon.SdNotify (which does nothing without $NOTIFY_SOCKET).
	send   func(msg string, prio journal.Priority, vars map[string]string) error
	notify func(state string)
}

// newLogger writes to stderr; journal says whether stderr is the
// journal's stream (read once where the run is wired up, Main).
func newLogger(stderr io.Writer, toJournal bool) *logger {
	return &logger{w: stderr, journal: toJournal, send: journal.Send,
		notify: func(state string) { _, _ = daemon.SdNotify(false, state) }}
}

// log sends one message with optional journal fields (SPROUT_ is
// prepended to their names, except MESSAGE_ID).
func (l *logger) log(prio journal.Priority, msg string, fields map[string]string) {
	l.status(msg)
	if l.journal && l.send != nil {
		vars := map[string]string{"SYSLOG_IDENTIFIER": "sprout"}
		if l.device != "" {
			vars["SPROUT_DEVICE"] = l.device
		}
		for k, v := range fields {
			if k != "MESSAGE_ID" {
				k = "SPROUT_" + k
			}
			vars[k] = v
		}
		if l.send(msg, prio, vars) == nil {
			return
		}
	}
	l.line(msg)
}

// line writes msg and a newline to stderr (without fmt, which a no-op
// run would start up for this one line).
func (l *logger) line(msg string) {
	_, _ = l.w.Write(append([]byte(msg), '\n'))
}

// status makes line the unit's status (systemctl status: "Status: …").
func (l *logger) status(line string) {
	if l.notify != nil {
		l.notify("STATUS=" + line)
	}
}

// console writes a line that must reach the console as well as the
// journal: a long step saying what it is doing. In the unit, stderr is
// journal+console, so a plain line reaches both (a structured entry
// reaches only the journal); elsewhere it is the terminal.
func (l *logger) console(msg string) {
	l.status(msg)
	l.line(msg)
}

func (l *logger) infof(format string, args ...any) {
	l.log(journal.PriInfo, fmt.Sprintf(format, args...), nil)
}

func (l *logger) errorf(format string, args ...any) {
	l.log(journal.PriErr, fmt.Sprintf(format, args...), nil)
}

// compat says which systemd-repart's behaviour a run that writes
// follows; the journal gets it as SPROUT_COMPAT too.
func (l *logger) compat(v compat.Version) {
	l.log(journal.PriInfo, fmt.Sprintf("Following systemd-repart %d (--compat=%d).", v, v),
		map[string]string{"COMPAT": v.String()})
}

// outcome logs a message that says how the run ended, with its MESSAGE_ID.
func (l *logger) outcome(prio journal.Priority, id, msg string) {
	var fields map[string]string
	if l.journal { // (a no-op run on a terminal allocates no map)
		fields = map[string]string{"MESSAGE_ID": id}
	}
	l.log(prio, msg, fields)
}

// partitions logs one structured entry per partition the run created or
// grew, so the journal answers "what did the first boot do" by field.
func (l *logger) partitions(p *plan.Plan, node func(int) string) {
	for _, r := range p.Partitions {
		if r.Activity == plan.Unchanged || r.Deferred {
			continue
		}
		id := MessageGrown
		if r.Activity == plan.Create {
			id = MessageCreated
		}
		msg := fmt.Sprintf("Partition %d (%s, %q): %s, %s → %s.", r.Index, node(r.Index), r.Label, r.Activity,
			plan.FormatBytes(r.OldSize), plan.FormatBytes(r.NewSize))
		l.log(journal.PriNotice, msg, map[string]string{
			"MESSAGE_ID": id,
			"PARTITION":  strconv.Itoa(r.Index), "NODE": node(r.Index), "LABEL": r.Label,
			"PARTUUID": r.UUID.String(), "ACTIVITY": string(r.Activity), "FORMAT": r.Format,
			"OFFSET":   strconv.FormatUint(r.Offset, 10),
			"OLD_SIZE": strconv.FormatUint(r.OldSize, 10), "NEW_SIZE": strconv.FormatUint(r.NewSize, 10),
			"COMPAT": p.Compat.String(),
		})
	}
}
