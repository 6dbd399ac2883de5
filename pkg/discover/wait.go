package discover

import (
	"errors"
	"fmt"
	"time"
)

// WaitOptions says how long Wait looks for the disk, and lets tests run it
// without sleeping.
type WaitOptions struct {
	// Timeout is how long to keep looking; 0 looks once.
	Timeout time.Duration
	// Interval between looks; 0 means 100 ms.
	Interval time.Duration
	// Now and Sleep default to time.Now and time.Sleep.
	Now   func() time.Time
	Sleep func(time.Duration)
	// Waiting, if set, is called once, when a look found no disk yet and
	// Wait starts waiting; why is the deciding method's line of tried, such
	// as "root=: no device has PARTLABEL=root (scanned vda)".
	Waiting func(why string)
}

// Wait is Find, repeated until the disk appears or the timeout passes. In
// the initrd sprout may start before udev has announced the disk, and when
// the primary GPT is torn the kernel shows no partitions at all until
// sprout repairs the table; so sprout waits for its disk itself, by the
// same rules Find applies, instead of having systemd wait for a device
// that may never appear.
//
// Only "the method that applies names no device yet" is waited for. When
// no method applies there is nothing to wait for, and an ambiguous answer
// or an unreadable sysfs will not fix itself: both fail at once.
//
// waited is how long Wait waited: 0 when the first look decided.
func Wait(env Env, o WaitOptions) (disk string, tried []string, waited time.Duration, err error) {
	if o.Interval <= 0 {
		o.Interval = 100 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = time.Sleep
	}
	start := o.Now()
	announced := false
	for {
		disk, tried, err = Find(env)
		if err == nil || !worthWaiting(err) || o.Timeout <= 0 {
			if !announced {
				return disk, tried, 0, err
			}
			return disk, tried, o.Now().Sub(start), err
		}
		elapsed := o.Now().Sub(start)
		if elapsed >= o.Timeout {
			return "", tried, elapsed, fmt.Errorf("gave up after waiting %s: %w", o.Timeout, err)
		}
		if !announced && o.Waiting != nil && len(tried) > 0 {
			o.Waiting(tried[len(tried)-1])
		}
		announced = true
		o.Sleep(min(o.Interval, o.Timeout-elapsed))
	}
}

// worthWaiting reports whether err says "a method applies, but what it
// names is not there (yet)".
func worthWaiting(err error) bool {
	var fe *findError
	return errors.As(err, &fe) && fe.method != "" &&
		errors.Is(err, ErrNotFound) && !errors.Is(err, ErrAmbiguous)
}
