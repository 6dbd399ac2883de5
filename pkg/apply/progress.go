package apply

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sprout-initrd/sprout/pkg/plan"
)

// Progress says what a long step is doing while it runs, so no step of a
// first boot is silent (issue 21): a step still running after Quiet is
// announced with what it does and how far it is, and again after every
// Repeat it goes on; the status line (systemd's STATUS=, what systemctl
// status shows) lists the running steps and is kept current. Short steps
// stay silent. The executor starts, advances and ends steps; the caller
// decides where the lines go.
type Progress struct {
	// Say receives an announcement (the console and the journal).
	Say func(line string)
	// Status receives the status line whenever it changes.
	Status func(line string)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Quiet and Repeat: zero means 1 s and 1 min.
	Quiet, Repeat time.Duration

	mu     sync.Mutex
	steps  []*Task
	status string
}

// Task is one running step.
type Task struct {
	p           *Progress
	what        string
	total, done uint64 // bytes; total 0: no measure of how far
	start       time.Time
	said        int // announcements so far
}

func (p *Progress) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Start begins a task: what it does ("Formatting partition 5 "var" as
// ext4 (3.3G)"), and the bytes it will have done at the end, if it can
// tell. A nil Progress, or no what, gives a nil Task, which does nothing.
func (p *Progress) Start(what string, total uint64) *Task {
	if p == nil || what == "" {
		return nil
	}
	t := &Task{p: p, what: what, total: total, start: p.now()}
	p.mu.Lock()
	p.steps = append(p.steps, t)
	p.mu.Unlock()
	return t
}

// Advance records that done bytes are done.
func (t *Task) Advance(done uint64) {
	if t == nil {
		return
	}
	t.p.mu.Lock()
	t.done = done
	t.p.mu.Unlock()
}

// End ends the task.
func (t *Task) End() {
	if t == nil {
		return
	}
	p := t.p
	p.mu.Lock()
	for i, s := range p.steps {
		if s == t {
			p.steps = append(p.steps[:i], p.steps[i+1:]...)
			break
		}
	}
	p.mu.Unlock()
	p.Check()
}

// Check announces the tasks that are due and updates the status line.
// watch calls it every quarter of a second.
func (p *Progress) Check() {
	if p == nil {
		return
	}
	quiet, repeat := p.Quiet, p.Repeat
	if quiet <= 0 {
		quiet = time.Second
	}
	if repeat <= 0 {
		repeat = time.Minute
	}
	now := p.now()
	var say, running []string
	p.mu.Lock()
	for _, t := range p.steps {
		age := now.Sub(t.start)
		if age < quiet {
			continue
		}
		done := ""
		if t.total > 0 {
			done = plan.FormatBytes(t.done) + " done"
		}
		switch due := int(age/repeat) + 1; {
		case t.said == 0 && done == "":
			say = append(say, t.what+"…")
		case t.said == 0:
			say = append(say, fmt.Sprintf("%s: %s.", t.what, done))
		case due > t.said:
			say = append(say, fmt.Sprintf("%s: still running after %s.", t.what, withDone(age.Round(time.Second), done)))
		}
		t.said = int(age/repeat) + 1
		running = append(running, fmt.Sprintf("%s: %s", t.what, withDone(age.Truncate(time.Second), done)))
	}
	status := strings.Join(running, "; ")
	changed := status != "" && status != p.status
	if changed {
		p.status = status
	}
	p.mu.Unlock()
	for _, l := range say {
		if p.Say != nil {
			p.Say(l)
		}
	}
	if changed && p.Status != nil {
		p.Status(status)
	}
}

// withDone is "1m0s" or "1m0s, 2.0G done".
func withDone(d time.Duration, done string) string {
	if done == "" {
		return d.String()
	}
	return d.String() + ", " + done
}

// watch calls Check until the returned stop is called.
func (p *Progress) watch() (stop func()) {
	if p == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				p.Check()
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
