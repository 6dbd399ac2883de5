package apply_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sprout-initrd/sprout/pkg/apply"
	"github.com/sprout-initrd/sprout/pkg/blockdev"
	"github.com/sprout-initrd/sprout/pkg/plan"
)

// clock is a fake clock that only the medium moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// medium is an image file whose discards take time on the fake clock:
// perRequest for each request plus the bytes at perSecond, like an SD
// card's erase. It records each request's size.
type medium struct {
	blockdev.Device
	clock       *clock
	perRequest  time.Duration
	perSecond   int64 // bytes a second; 0: discards are refused (EOPNOTSUPP)
	mu          sync.Mutex
	requests    []int64
	unsupported int
}

func (m *medium) Discard(off, n int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.perSecond == 0 {
		m.unsupported++
		return fmt.Errorf("discard: %w", blockdev.ErrDiscardUnsupported)
	}
	m.requests = append(m.requests, n)
	m.clock.advance(m.perRequest + time.Duration(n*int64(time.Second)/m.perSecond))
	return m.Device.Discard(off, n)
}

func (m *medium) discarded() (total, largest int64) {
	for _, n := range m.requests {
		total += n
		largest = max(largest, n)
	}
	return total, largest
}

type mediumDisk struct {
	m      *medium
	kernel blockdev.Kernel
}

func (d *mediumDisk) Writer() (blockdev.Device, error) { return d.m, nil }
func (d *mediumDisk) Kernel() blockdev.Kernel          { return d.kernel }
func (d *mediumDisk) SettleUdev(context.Context, []string, time.Duration) error {
	return d.m.Close()
}

// runOn plans the seed image's first boot with a discard budget and runs
// it on a medium of the given speed; it returns the medium and the log.
func runOn(t *testing.T, budget time.Duration, perRequest time.Duration, perSecond int64) (*medium, []string, *plan.Plan) {
	t.Helper()
	path := seedImage(t)
	tb, size, ss := readTable(t, path)
	p, err := plan.Make(definitions(t), plan.Snapshot{Size: uint64(size), SectorSize: ss, Label: plan.LabelGPT, Table: tb},
		plan.Options{Seed: seed, Discard: plan.DiscardPolicy{On: true, Budget: budget}})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := blockdev.Open(path, blockdev.OpenOptions{Write: true, Flock: blockdev.ExclusiveFlock})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	c := &clock{now: time.Unix(1700000000, 0)}
	m := &medium{Device: dev, clock: c, perRequest: perRequest, perSecond: perSecond}
	var mu sync.Mutex
	var log []string
	err = apply.Run(context.Background(), &mediumDisk{m: m, kernel: dev}, p, apply.Options{
		Now:    c.Now,
		Runner: func(context.Context, []string) error { return nil },
		Log: func(format string, args ...any) {
			mu.Lock()
			log = append(log, fmt.Sprintf(format, args...))
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatalf("the run failed: %v\n%s", err, strings.Join(log, "\n"))
	}
	after, _, _ := readTable(t, path)
	if len(after.Entries) != len(tb.Entries)+2 {
		t.Fatalf("the run did not add home and var: %d entries\n%s", len(after.Entries), strings.Join(log, "\n"))
	}
	return m, log, p
}

func lineWith(log []string, parts ...string) string {
	for _, l := range log {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return l
		}
	}
	return ""
}

// A medium that discards 128 MiB a second: the run discards for about
// its budget, in pieces of about a quarter second, says what it left, and
// goes on to format and write the table.
func TestDiscardStopsWhenTheBudgetIsSpentAndTheRunGoesOn(t *testing.T) {
	const budget, rate = 2 * time.Second, 128 * mib
	m, log, _ := runOn(t, budget, 20*time.Millisecond, rate)
	total, largest := m.discarded()
	spent := time.Duration(0)
	for _, n := range m.requests {
		spent += 20*time.Millisecond + time.Duration(n*int64(time.Second)/rate)
	}
	// Overrun: at most one piece, which the adaptation keeps near 250 ms.
	if spent > budget+600*time.Millisecond || spent < budget-600*time.Millisecond {
		t.Errorf("discards took %s on the medium, want about the budget of %s", spent, budget)
	}
	if largest > rate/2 {
		t.Errorf("a request of %d MiB on a medium that discards %d MiB a second (one request should take about 250 ms)", largest/mib, rate/mib)
	}
	if total >= 900*mib {
		t.Errorf("discarded %d MiB, more than the budget allows", total/mib)
	}
	for _, part := range []string{`partition 3 "home"`, `partition 4 "var"`} {
		if l := lineWith(log, "Discarded", part, "the discard budget of 2s is spent", "stays as it is"); l == "" {
			t.Errorf("no line says how much of %s was discarded and that the rest stays:\n%s", part, strings.Join(log, "\n"))
		}
	}
	if lineWith(log, "Formatted future partition 4") == "" {
		t.Errorf("the run did not go on to format:\n%s", strings.Join(log, "\n"))
	}
}

// An SD card in QEMU erases a few MiB a second: at that rate the budget
// would buy a few percent of the range, so after a second of trying the
// run stops discarding, skips the other range, says why, and goes on.
func TestDiscardGivesUpOnAHopelesslySlowMedium(t *testing.T) {
	const rate = 4 * mib
	m, log, _ := runOn(t, 10*time.Second, 20*time.Millisecond, rate)
	spent := time.Duration(0)
	for _, n := range m.requests {
		spent += 20*time.Millisecond + time.Duration(n*int64(time.Second)/rate)
	}
	if spent < time.Second || spent > 2*time.Second {
		t.Errorf("discards took %s on the medium, want about the one second it takes to measure the rate", spent)
	}
	if lineWith(log, `partition 3 "home"`, "and stopped: at the 3.9M/s the device discards", "more than 10 times its share (5s)", "stays as it is") == "" ||
		lineWith(log, `Not discarding partition 4 "var" (321.6M): the device discards 3.9M/s, too slowly`) == "" ||
		lineWith(log, "Formatted future partition 4") == "" {
		t.Errorf("log:\n%s", strings.Join(log, "\n"))
	}
}

// A fast device discards everything, in a few growing requests.
func TestDiscardOfAFastDeviceIsWholeInFewRequests(t *testing.T) {
	m, log, p := runOn(t, time.Second, time.Millisecond, 64<<30)
	var want int64
	for _, s := range p.Steps {
		if d, ok := s.(plan.DiscardRange); ok {
			want += int64(d.Size)
		}
	}
	total, _ := m.discarded()
	if total != want || want == 0 {
		t.Errorf("discarded %d bytes, want all %d", total, want)
	}
	if len(m.requests) > 12 {
		t.Errorf("%d requests for %d MiB on a fast device; the pieces should grow", len(m.requests), want/mib)
	}
	if lineWith(log, `Discarded partition 3 "home"`) == "" || lineWith(log, "budget") != "" {
		t.Errorf("log:\n%s", strings.Join(log, "\n"))
	}
}

// --discard-budget=infinity: a slow medium is discarded whole.
func TestDiscardWithoutBudgetDiscardsEverything(t *testing.T) {
	m, _, p := runOn(t, 0, 20*time.Millisecond, 16*mib)
	var want int64
	for _, s := range p.Steps {
		if d, ok := s.(plan.DiscardRange); ok {
			want += int64(d.Size)
		}
	}
	if total, _ := m.discarded(); total != want {
		t.Errorf("discarded %d of %d bytes without a budget", total, want)
	}
}

// A device that refuses to discard is asked once, and the run goes on.
func TestDiscardOnADeviceThatCannotIsTriedOnce(t *testing.T) {
	m, log, _ := runOn(t, time.Second, 0, 0)
	if m.unsupported != 1 {
		t.Errorf("%d refused requests, want 1 (later ranges are skipped)", m.unsupported)
	}
	if lineWith(log, "Not discarding", "cannot discard") == "" {
		t.Errorf("log:\n%s", strings.Join(log, "\n"))
	}
}
