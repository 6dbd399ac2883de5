package apply

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sprout-initrd/sprout/pkg/blockdev"
	"github.com/sprout-initrd/sprout/pkg/plan"
)

// discarder runs a plan's DiscardRange steps within the budget they
// share. Each range is discarded in pieces, one BLKDISCARD each, so the
// run can stop when its share of the budget is spent: the kernel cannot
// interrupt one discard request, and on an SD card a request of a few
// gigabytes becomes thousands of erase commands that did not end within
// a boot (issue 21). Piece sizes adapt so that one request takes about
// pieceTarget: a fast SSD quickly gets gigabyte pieces, a slow card stays
// at a few MiB, and the budget is overrun by at most about one piece. A
// device so slow that the budget could buy only a few percent of a range
// is given up on after probeTime (hopeless).
type discarder struct {
	budget time.Duration // the run's; 0: no limit
	left   time.Duration // what earlier ranges left of it
	ranges int           // DiscardRange steps not run yet
	unit   int64         // pieces are multiples of this
	limit  int64         // the largest piece
	// unsupported: the device refused to discard; later ranges skip.
	unsupported bool
	// tooSlow is the rate at which discarding was given up on ("3.9M/s",
	// hopeless); later ranges skip.
	tooSlow string
}

const (
	// firstPiece is the first request of a range: small enough for a slow
	// medium to answer within pieceTarget or so.
	firstPiece = 4 << 20
	// pieceTarget is how long one request should take.
	pieceTarget = 250 * time.Millisecond
	// probeTime is how long a range is discarded before its rate decides
	// whether going on is worth it (hopeless).
	probeTime = time.Second
	// hopelessFactor: a range that would take this many times its share
	// of the budget is not worth its share.
	hopelessFactor = 10
	// largestPiece caps a request (a fast device gets there within a few
	// requests; the kernel splits it at discard_max_bytes itself).
	largestPiece = 16 << 30
)

func newDiscarder(p *plan.Plan, limits *plan.DiscardLimits, sectorSize int) *discarder {
	d := &discarder{unit: 1 << 20, limit: largestPiece}
	for _, s := range p.Steps {
		if r, ok := s.(plan.DiscardRange); ok {
			d.ranges++
			d.budget, d.left = r.Budget, r.Budget
		}
	}
	if limits != nil && int64(limits.Granularity) > d.unit {
		// An erase block larger than 1 MiB: whole ones only.
		d.unit = int64(limits.Granularity)
	}
	if int64(sectorSize) > d.unit {
		d.unit = int64(sectorSize)
	}
	return d
}

// discard runs one DiscardRange. It logs what was and was not discarded;
// only a failure other than "the device cannot discard" is an error.
func (d *discarder) discard(ctx context.Context, t blockdev.Device, s plan.DiscardRange, opts Options) error {
	what := s.What()
	share := d.left
	if d.ranges > 0 {
		share = d.left / time.Duration(d.ranges)
	}
	d.ranges--
	switch {
	case d.unsupported:
		return nil
	case d.tooSlow != "":
		opts.Log("Not discarding %s: the device discards %s, too slowly to be worth the discard budget.", what, d.tooSlow)
		return nil
	case d.budget > 0 && share <= 0:
		opts.Log("Not discarding %s: the discard budget of %s is spent.", what, d.budget)
		return nil
	}
	task := opts.Progress.Start("Discarding "+what, s.Size)
	defer task.End()
	start := opts.now()
	off, end := int64(s.Offset), int64(s.Offset+s.Size)
	piece := d.round(firstPiece)
	stopped := "" // why the rest is not worth discarding (hopeless)
	for off < end && stopped == "" && (d.budget == 0 || opts.now().Sub(start) < share) {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(piece, end-off)
		t0 := opts.now()
		err := t.Discard(off, n)
		if errors.Is(err, blockdev.ErrDiscardUnsupported) {
			d.unsupported = true
			opts.Log("Not discarding %s: %s cannot discard (%v).", what, t.Path(), err)
			return nil
		}
		if err != nil {
			return fmt.Errorf("discard %s: %w", what, err)
		}
		off += n
		task.Advance(uint64(off) - s.Offset)
		piece = d.next(piece, opts.now().Sub(t0))
		if d.budget > 0 {
			stopped = d.hopeless(opts.now().Sub(start), off-int64(s.Offset), int64(s.Size), share)
		}
	}
	took := opts.now().Sub(start)
	if d.budget > 0 {
		d.left = max(d.left-took, 0)
	}
	done := uint64(off) - s.Offset
	switch {
	case done == s.Size:
		opts.Log("Discarded %s in %s.", what, took.Round(time.Millisecond))
	case stopped != "":
		opts.Log("Discarded %s of %s in %s and stopped: %s; the other %s stays as it is (discard only spares the device work later).",
			plan.FormatBytes(done), what, took.Round(time.Millisecond), stopped, plan.FormatBytes(s.Size-done))
	default:
		opts.Log("Discarded %s of %s in %s; the discard budget of %s is spent, the other %s stays as it is (discard only spares the device work later).",
			plan.FormatBytes(done), what, took.Round(time.Millisecond), d.budget, plan.FormatBytes(s.Size-done))
	}
	return nil
}

// hopeless says why going on is not worth it, or "": once a range has
// been discarded for probeTime, whether the whole range would take more
// than hopelessFactor times its share of the budget at the rate seen.
// Then a few percent of it is all the budget could buy, which spares the
// device little, and the time is better left to the boot. The rate is the
// device's, so later ranges are skipped (tooSlow).
func (d *discarder) hopeless(took time.Duration, done, size int64, share time.Duration) string {
	if took < probeTime || done <= 0 || done >= size {
		return ""
	}
	whole := time.Duration(float64(took) * float64(size) / float64(done))
	if whole <= hopelessFactor*share {
		return ""
	}
	d.tooSlow = plan.FormatBytes(uint64(float64(done)/took.Seconds())) + "/s"
	return fmt.Sprintf("at the %s the device discards, the whole range would take %s, more than %d times its share (%s) of the discard budget",
		d.tooSlow, whole.Round(time.Second), hopelessFactor, share.Round(time.Millisecond))
}

// next is the piece after one of size piece that took took: doubled (or
// quadrupled) while requests are quick, halved when one was slow.
func (d *discarder) next(piece int64, took time.Duration) int64 {
	switch {
	case took < pieceTarget/4:
		piece *= 4
	case took < pieceTarget/2:
		piece *= 2
	case took > pieceTarget:
		piece /= 2
	}
	return d.round(min(piece, d.limit))
}

// round makes n a whole number of units, at least one.
func (d *discarder) round(n int64) int64 {
	return max(n/d.unit, 1) * d.unit
}
