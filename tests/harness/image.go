package harness

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// hashBlock is the granularity of the hole-aware content hash.
const hashBlock = 4096

// CreateSparse creates (or truncates) path as a sparse file of size bytes.
func CreateSparse(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create sparse image: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("create sparse image %s of %d bytes: %w", path, size, err)
	}
	return f.Close()
}

// Resize sets the size of path, keeping it sparse (the new tail is a hole,
// like a disk image dd'ed onto a bigger disk).
func Resize(path string, size int64) error {
	if err := os.Truncate(path, size); err != nil {
		return fmt.Errorf("resize image to %d bytes: %w", size, err)
	}
	return nil
}

// Size returns the size of path in bytes.
func Size(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// extent is a data (non-hole) byte range [Start, End).
type extent struct{ Start, End int64 }

// dataExtents lists the data ranges of f within [0, size) using
// SEEK_DATA/SEEK_HOLE; file systems without hole support report one extent.
func dataExtents(f *os.File, size int64) ([]extent, error) {
	var out []extent
	fd := int(f.Fd())
	for off := int64(0); off < size; {
		start, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole remains
		}
		if err != nil {
			return nil, fmt.Errorf("SEEK_DATA %s at %d: %w", f.Name(), off, err)
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil {
			return nil, fmt.Errorf("SEEK_HOLE %s at %d: %w", f.Name(), start, err)
		}
		if end > size {
			end = size
		}
		if end > start {
			out = append(out, extent{start, end})
		}
		off = end
	}
	return out, nil
}

// CopySparse copies src to dst (created or truncated) copying only data
// extents, so a 2 TiB image with a few MiB of data copies in milliseconds.
func CopySparse(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy image: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("copy image: %w", err)
	}
	out, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("copy image: %w", err)
	}
	exts, err := dataExtents(in, st.Size())
	if err == nil {
		for _, e := range exts {
			if err = copyRange(in, out, e.Start, e.End-e.Start); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = out.Truncate(st.Size())
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}

// copyRange copies [off, off+n) between files at the same offset, with
// copy_file_range when the kernel allows and plain reads otherwise.
func copyRange(in, out *os.File, off, n int64) error {
	roff, woff := off, off
	for n > 0 {
		c, err := unix.CopyFileRange(int(in.Fd()), &roff, int(out.Fd()), &woff, int(min(n, 1<<30)), 0)
		if err != nil || c == 0 {
			break
		}
		n -= int64(c)
	}
	if n == 0 {
		return nil
	}
	buf := make([]byte, 1<<20)
	for n > 0 {
		chunk := buf[:min(n, int64(len(buf)))]
		if _, err := in.ReadAt(chunk, roff); err != nil {
			return err
		}
		if _, err := out.WriteAt(chunk, roff); err != nil {
			return err
		}
		roff += int64(len(chunk))
		n -= int64(len(chunk))
	}
	return nil
}

// ContentHash is a hash of path's logical bytes and size: two files hash
// equal exactly when they are byte-identical, whatever their hole layout.
// Only data extents are read, so it is cheap on sparse images.
func ContentHash(path string) (string, error) {
	size, err := Size(path)
	if err != nil {
		return "", fmt.Errorf("hash image: %w", err)
	}
	return RangeHash(path, 0, size)
}

// RangeHash hashes the logical bytes of [off, off+n) of path, relative to
// off, so the same partition range in two images can be compared. Bytes
// past the end of the file count as zeros.
func RangeHash(path string, off, n int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash range: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("hash range: %w", err)
	}
	h := sha256.New()
	var hdr [8]byte
	binary.LittleEndian.PutUint64(hdr[:], uint64(n))
	h.Write(hdr[:])
	end := min(off+n, st.Size())
	exts, err := dataExtents(f, end)
	if err != nil {
		return "", err
	}
	zero := make([]byte, hashBlock)
	buf := make([]byte, 256*hashBlock)
	next := int64(0) // first relative block index not hashed yet
	for _, e := range exts {
		if e.End <= off {
			continue
		}
		first := max((max(e.Start, off)-off)/hashBlock, next)
		last := (e.End - off + hashBlock - 1) / hashBlock // exclusive
		for b := first; b < last; {
			cnt := min(last-b, int64(len(buf)/hashBlock))
			pos := off + b*hashBlock
			chunk := buf[:min(cnt*hashBlock, end-pos)]
			if _, err := f.ReadAt(chunk, pos); err != nil && !errors.Is(err, io.EOF) {
				return "", fmt.Errorf("hash range of %s at %d: %w", path, pos, err)
			}
			for i := 0; i < len(chunk); i += hashBlock {
				blk := chunk[i:min(i+hashBlock, len(chunk))]
				if bytes.Equal(blk, zero[:len(blk)]) {
					continue
				}
				binary.LittleEndian.PutUint64(hdr[:], uint64(b*hashBlock+int64(i)))
				h.Write(hdr[:])
				h.Write(blk)
			}
			b += cnt
		}
		next = last
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// AllocatedBytes returns the bytes actually stored for path (st_blocks).
func AllocatedBytes(path string) (int64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return st.Blocks * 512, nil
}

// FirstDifference returns the offset of the first byte (to hashBlock
// precision) in [off, off+n) where a and b differ, or -1 when they are
// equal; it bisects with RangeHash, so it stays cheap on sparse images.
func FirstDifference(a, b string, off, n int64) (int64, error) {
	for {
		ha, err := RangeHash(a, off, n)
		if err != nil {
			return 0, err
		}
		hb, err := RangeHash(b, off, n)
		if err != nil {
			return 0, err
		}
		if ha == hb {
			return -1, nil
		}
		if n <= hashBlock {
			return off, nil
		}
		half := (n/2 + hashBlock - 1) / hashBlock * hashBlock
		d, err := FirstDifference(a, b, off, half)
		if err != nil || d >= 0 {
			return d, err
		}
		off, n = off+half, n-half
	}
}
