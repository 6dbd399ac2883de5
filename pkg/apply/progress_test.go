package apply_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sprout-initrd/sprout/pkg/apply"
)

// A step is silent for its first second, then says what it does and how
// far it is, and again after each minute it goes on; the status line
// lists the running steps.
func TestProgressAnnouncesLongStepsOnlyAndRepeatsEachMinute(t *testing.T) {
	c := &clock{now: time.Unix(1700000000, 0)}
	var said, status []string
	p := &apply.Progress{Now: c.Now,
		Say:    func(l string) { said = append(said, l) },
		Status: func(l string) { status = append(status, l) }}

	quick := p.Start(`Wiping old signatures from future partition 4`, 0)
	c.advance(300 * time.Millisecond)
	p.Check()
	quick.End()
	discard := p.Start(`Discarding partition 4 "home" (10.6G)`, 10<<30)
	format := p.Start(`Formatting partition 5 "var" as ext4 (5.3G)`, 0)
	c.advance(900 * time.Millisecond)
	p.Check()
	if len(said) != 0 || len(status) != 0 {
		t.Fatalf("steps younger than a second were announced: %q, status %q", said, status)
	}
	discard.Advance(2 << 30)
	c.advance(200 * time.Millisecond)
	p.Check()
	p.Check()
	want := []string{`Discarding partition 4 "home" (10.6G): 2.0G done.`, `Formatting partition 5 "var" as ext4 (5.3G)…`}
	if strings.Join(said, "|") != strings.Join(want, "|") {
		t.Errorf("after 1.1 s:\n said %q\n want %q", said, want)
	}
	if len(status) != 1 || status[0] != `Discarding partition 4 "home" (10.6G): 1s, 2.0G done; Formatting partition 5 "var" as ext4 (5.3G): 1s` {
		t.Errorf("status %q", status)
	}
	discard.End()
	said = nil
	c.advance(time.Minute)
	p.Check()
	c.advance(time.Second)
	p.Check()
	c.advance(time.Minute)
	p.Check()
	want = []string{`Formatting partition 5 "var" as ext4 (5.3G): still running after 1m1s.`,
		`Formatting partition 5 "var" as ext4 (5.3G): still running after 2m2s.`}
	if strings.Join(said, "|") != strings.Join(want, "|") {
		t.Errorf("after one and two minutes:\n said %q\n want %q", said, want)
	}
	format.End()
}

// A nil Progress (nobody listens) does nothing and does not fail.
func TestNilProgressIsSilent(t *testing.T) {
	var p *apply.Progress
	task := p.Start("x", 1)
	task.Advance(1)
	task.End()
	p.Check()
}
