package crash

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The on-disk format of a dm-log-writes log device, as described in the
// kernel's Documentation/admin-guide/device-mapper/log-writes.rst and
// drivers/md/dm-log-writes.c (facts only; this reader is our own).
//
// The log is a sequence of blocks of the traced device's logical sector
// size. Block 0 is the super block: magic, version, number of entries
// (all little-endian 64-bit) and the sector size (32-bit). Entries follow
// from block 1 on, in the order the writes completed (a write is logged
// once a flush made it durable, FUA writes at once). Each entry is one
// block holding sector, nr_sectors, flags and data_len (64-bit each;
// sector and nr_sectors in logical sectors), followed by nr_sectors blocks
// of the written data — except for discards, which carry no data, and
// marks, whose text (data_len bytes) sits in the entry block itself.
const (
	logMagic   = 0x6a736677736872
	logVersion = 1

	logFlush    = 1 << 0
	logFUA      = 1 << 1
	logDiscard  = 1 << 2
	logMark     = 1 << 3
	logMetadata = 1 << 4
)

// logEntry is one entry of the log.
type logEntry struct {
	Index      int   // 0-based position in the log
	Sector     int64 // in logical sectors
	Sectors    int64
	Flags      uint64
	Mark       string
	dataOffset int64 // where the data starts in the log
}

func (e logEntry) String() string {
	var f []string
	for _, n := range []struct {
		bit  uint64
		name string
	}{{logFlush, "FLUSH"}, {logFUA, "FUA"}, {logDiscard, "DISCARD"}, {logMark, "MARK"}, {logMetadata, "META"}} {
		if e.Flags&n.bit != 0 {
			f = append(f, n.name)
		}
	}
	s := fmt.Sprintf("entry %d: sectors [%d, %d) %s", e.Index, e.Sector, e.Sector+e.Sectors, strings.Join(f, "|"))
	if e.Mark != "" {
		s += fmt.Sprintf(" %q", e.Mark)
	}
	return s
}

// changesData reports whether replaying the entry changes the disk.
func (e logEntry) changesData() bool {
	return e.Flags&logMark == 0 && e.Sectors > 0
}

// writeLog is a parsed log.
type writeLog struct {
	f          *os.File
	SectorSize int64
	Entries    []logEntry
}

// readWriteLog parses the log device image at path.
func readWriteLog(path string) (*writeLog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	l, err := parseWriteLog(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	l.f = f
	return l, nil
}

func parseWriteLog(r io.ReaderAt) (*writeLog, error) {
	var super [28]byte
	if _, err := r.ReadAt(super[:], 0); err != nil {
		return nil, fmt.Errorf("log super block: %w", err)
	}
	le := binary.LittleEndian
	if m := le.Uint64(super[0:]); m != logMagic {
		return nil, fmt.Errorf("not a dm-log-writes log (magic %#x)", m)
	}
	if v := le.Uint64(super[8:]); v != logVersion {
		return nil, fmt.Errorf("log version %d, want %d", v, logVersion)
	}
	n := le.Uint64(super[16:])
	ss := int64(le.Uint32(super[24:]))
	if ss < 512 || ss > 65536 || ss&(ss-1) != 0 {
		return nil, fmt.Errorf("log sector size %d", ss)
	}
	if n > 1<<24 {
		return nil, fmt.Errorf("log claims %d entries", n)
	}
	l := &writeLog{SectorSize: ss}
	block := make([]byte, ss)
	pos := ss
	for i := 0; i < int(n); i++ {
		if _, err := r.ReadAt(block, pos); err != nil {
			return nil, fmt.Errorf("entry %d at byte %d: %w", i, pos, err)
		}
		e := logEntry{
			Index:   i,
			Sector:  int64(le.Uint64(block[0:])),
			Sectors: int64(le.Uint64(block[8:])),
			Flags:   le.Uint64(block[16:]),
		}
		dataLen := le.Uint64(block[24:])
		if e.Sectors < 0 || e.Sectors > 1<<32 || e.Sector < 0 {
			return nil, fmt.Errorf("entry %d at byte %d: implausible sectors %d+%d", i, pos, e.Sector, e.Sectors)
		}
		pos += ss
		switch {
		case e.Flags&logMark != 0:
			if dataLen > uint64(ss-32) {
				return nil, fmt.Errorf("entry %d: mark of %d bytes", i, dataLen)
			}
			e.Mark = string(block[32 : 32+dataLen])
		case e.Flags&logDiscard != 0:
		default:
			if dataLen != 0 {
				return nil, errors.New("entry with inline data that is not a mark")
			}
			e.dataOffset = pos
			pos += e.Sectors * ss
		}
		l.Entries = append(l.Entries, e)
	}
	return l, nil
}

// apply replays one entry onto the disk image w: data is written, a
// discarded range reads back as zeros (as on a loop device over a file).
func (l *writeLog) apply(e logEntry, w *os.File) error {
	if !e.changesData() {
		return nil
	}
	off, n := e.Sector*l.SectorSize, e.Sectors*l.SectorSize
	if e.Flags&logDiscard != 0 {
		if err := unix.Fallocate(int(w.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n); err != nil {
			return fmt.Errorf("replay %v: %w", e, err)
		}
		return nil
	}
	buf := make([]byte, min(n, 1<<20))
	for done := int64(0); done < n; {
		chunk := buf[:min(int64(len(buf)), n-done)]
		if _, err := l.f.ReadAt(chunk, e.dataOffset+done); err != nil {
			return fmt.Errorf("replay %v: read log: %w", e, err)
		}
		if _, err := w.WriteAt(chunk, off+done); err != nil {
			return fmt.Errorf("replay %v: %w", e, err)
		}
		done += int64(len(chunk))
	}
	return nil
}

func (l *writeLog) Close() error { return l.f.Close() }

// TestParseWriteLog checks the reader on a log built by hand: a write, a
// flush, a discard, a mark.
func TestParseWriteLog(t *testing.T) {
	const ss = 512
	le := binary.LittleEndian
	var log []byte
	block := func(fields ...uint64) []byte {
		b := make([]byte, ss)
		for i, f := range fields {
			le.PutUint64(b[8*i:], f)
		}
		return b
	}
	super := block(logMagic, logVersion, 4)
	le.PutUint32(super[24:], ss)
	log = append(log, super...)
	log = append(log, block(10, 2, 0, 0)...)
	data := make([]byte, 2*ss)
	for i := range data {
		data[i] = byte(i)
	}
	log = append(log, data...)
	log = append(log, block(0, 0, logFlush, 0)...)
	log = append(log, block(100, 8, logDiscard, 0)...)
	mark := block(0, 0, logMark, 3)
	copy(mark[32:], "end")
	log = append(log, mark...)

	l, err := parseWriteLog(bytesReaderAt(log))
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(l.Entries)
	want := "[entry 0: sectors [10, 12)  entry 1: sectors [0, 0) FLUSH entry 2: sectors [100, 108) DISCARD entry 3: sectors [0, 0) MARK \"end\"]"
	if got != want {
		t.Errorf("entries\n got %s\nwant %s", got, want)
	}
	if off := l.Entries[0].dataOffset; off != 2*ss || log[off+5] != 5 {
		t.Errorf("data of entry 0 at %d", off)
	}
	var changing []int
	for _, e := range l.Entries {
		if e.changesData() {
			changing = append(changing, e.Index)
		}
	}
	if fmt.Sprint(changing) != "[0 2]" {
		t.Errorf("entries that change data: %v", changing)
	}
	if _, err := parseWriteLog(bytesReaderAt(log[:ss+100])); err == nil {
		t.Error("a truncated log parsed")
	}
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
