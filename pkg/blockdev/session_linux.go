package blockdev

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Session is one run's hold on a disk or image file. It owns both
// handles and the lock, and releases them:
//
//   - a read-only handle, opened first, holds the disk's BSD lock for the
//     whole run (exclusive when the run may write, so udev keeps away);
//     the snapshot is read and the kernel is told through it;
//   - a writable handle, opened by Writer only when the run writes, holds
//     no lock: when it is closed, udev's watch finds the disk still locked
//     and does not re-read its table under the run's feet.
//
// Release closes the writable handle first, then the locked one.
type Session struct {
	root   Paths
	write  bool
	locked *Handle
	writer *Handle
}

// SessionOptions says how a Session opens its disk.
type SessionOptions struct {
	// Write: the run may write. The lock is exclusive and Writer may be
	// called; otherwise the lock is shared and Writer refuses.
	Write bool
	// Paths is where the kernel's state is read; empty fields mean the
	// system's.
	Paths Paths
}

// OpenSession opens and locks path (a whole block device or a regular
// image file; see Open).
func OpenSession(path string, opts SessionOptions) (*Session, error) {
	s := &Session{root: opts.Paths.orSystem(), write: opts.Write}
	if err := s.openLocked(path); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Session) openLocked(path string) error {
	mode := SharedFlock
	if s.write {
		mode = ExclusiveFlock
	}
	h, err := Open(path, OpenOptions{Flock: mode, Paths: s.root})
	if err != nil {
		return err
	}
	s.locked = h
	return nil
}

// Path is the resolved path of the disk or image.
func (s *Session) Path() string { return s.locked.Path() }

// Reader is the locked read-only handle, for reading the snapshot.
func (s *Session) Reader() Device { return s.locked }

// Kernel is the kernel's view of the disk.
func (s *Session) Kernel() Kernel { return s.locked }

// DiscardLimits are the disk's discard limits (a block device's only).
func (s *Session) DiscardLimits() (DiscardLimits, error) { return s.locked.DiscardLimits() }

// Identity names the disk after the handles are closed.
func (s *Session) Identity() Identity { return s.locked.Identity() }

// Writer opens (once) the unlocked writable handle.
func (s *Session) Writer() (Device, error) {
	if !s.write {
		return nil, fmt.Errorf("%s: the session was opened read-only", s.Path())
	}
	if s.writer == nil {
		w, err := Open(s.Path(), OpenOptions{Write: true, Paths: s.root})
		if err != nil {
			return nil, err
		}
		s.writer = w
	}
	return s.writer, nil
}

// Reopen opens the disk again, for a new size after an image file was
// grown. No writable handle may be open.
func (s *Session) Reopen() error {
	if s.writer != nil {
		return fmt.Errorf("%s: reopen while a writable handle is open", s.Path())
	}
	path := s.Path()
	if err := s.locked.Close(); err != nil {
		return err
	}
	return s.openLocked(path)
}

// Release closes the writable handle, then the locked one (releasing the
// lock). It is safe to call more than once.
func (s *Session) Release() error {
	var errs []error
	if s.writer != nil {
		errs = append(errs, s.writer.Close())
	}
	errs = append(errs, s.locked.Close())
	return errors.Join(errs...)
}

// SettleUdev releases the session (udev holds back the events of a
// locked disk) and then waits for udev to create links, or, without udev,
// for the partitions' nodes (WaitForUdev). For an image file it only
// releases.
func (s *Session) SettleUdev(ctx context.Context, links []string, timeout time.Duration) error {
	id := s.Identity()
	if err := s.Release(); err != nil {
		return err
	}
	return WaitForUdev(ctx, s.root, id, links, timeout)
}
