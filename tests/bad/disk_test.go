package bad

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// input is one prepared copy of a case's disk.
type input struct {
	device  string // what sprout is given
	image   string // the backing image file, "" when there is none
	unmount string // mount point to unmount before detaching
	detach  []string
}

// prepare builds the case's disk in dir and returns what to pass as the
// device. Call release when done.
func prepare(ctx context.Context, c *badCase, dir string) (*input, error) {
	in := &input{}
	switch c.device {
	case "dir":
		in.device = filepath.Join(dir, "a-directory")
		return in, os.Mkdir(in.device, 0o755)
	case "devnull":
		in.device = os.DevNull
		return in, nil
	case "missing":
		in.device = filepath.Join(dir, "no-such-disk")
		return in, nil
	case "none":
		return in, nil
	}
	if !c.hasDisk {
		return nil, fmt.Errorf("device %s needs disk =", c.device)
	}
	in.image = filepath.Join(dir, "disk.img")
	in.device = in.image
	if err := harness.CreateSparse(in.image, c.diskSize); err != nil {
		return nil, err
	}
	if c.table != "" {
		if err := writeTable(ctx, c, in.image); err != nil {
			return nil, err
		}
	}
	for _, op := range c.corrupt {
		if err := corrupt(in.image, c.sector, op); err != nil {
			return nil, fmt.Errorf("corrupt %q: %w", op, err)
		}
	}
	if c.grow > 0 {
		// The table was made for the smaller disk: the backup GPT is
		// no longer at the end, as on an appliance image's first boot.
		if err := os.Truncate(in.image, c.grow); err != nil {
			return nil, err
		}
	}
	switch c.device {
	case "loop", "loop-ro", "partition":
		// --partscan makes the kernel drop the partitions partx adds when
		// the device is detached; without it they would linger for the
		// next user of the device.
		args := []string{"losetup", "--find", "--show", "--partscan", "--sector-size", strconv.Itoa(c.sector)}
		if c.device == "loop-ro" {
			args = append(args, "--read-only")
		}
		res, err := harness.MustSucceed(ctx, append(args, in.image)...)
		if err != nil {
			return nil, err
		}
		loop := strings.TrimSpace(res.Stdout)
		in.detach = append(in.detach, loop)
		in.device = loop
		if c.device == "partition" || c.kernel || c.mount > 0 {
			// This kernel has no GPT parser: partitions appear only
			// through BLKPG.
			if _, err := harness.MustSucceed(ctx, "partx", "--add", loop); err != nil {
				return in, err
			}
			if err := waitFor(loop + "p1"); err != nil {
				return in, err
			}
		}
		if c.device == "partition" {
			in.device = loop + "p1"
		}
		if c.mount > 0 {
			part := loop + "p" + strconv.Itoa(c.mount)
			mnt := filepath.Join(dir, "mnt")
			if err := os.Mkdir(mnt, 0o755); err != nil {
				return in, err
			}
			if _, err := harness.MustSucceed(ctx, "mkfs.ext4", "-q", part); err != nil {
				return in, err
			}
			// Read-only, so the mounted file system writes nothing while
			// the case runs.
			if _, err := harness.MustSucceed(ctx, "mount", "-o", "ro,noload", part, mnt); err != nil {
				return in, err
			}
			in.unmount = mnt
		}
		if c.retable != "" {
			script, err := os.ReadFile(filepath.Join(c.dir, c.retable))
			if err != nil {
				return in, err
			}
			res, err := harness.RunInput(ctx, script, "sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", loop)
			if err == nil && res.ExitCode != 0 {
				err = fmt.Errorf("sfdisk %s on %s: exit %d: %s", c.retable, loop, res.ExitCode, strings.TrimSpace(res.Stderr))
			}
			if err != nil {
				return in, err
			}
		}
	}
	return in, nil
}

func (in *input) release(ctx context.Context) error {
	var errs []string
	if in.unmount != "" {
		if _, err := harness.MustSucceed(ctx, "umount", in.unmount); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for _, l := range in.detach {
		harness.Run(ctx, nil, "partx", "--delete", l) // fails harmlessly when there are none
		if _, err := harness.MustSucceed(ctx, "losetup", "--detach", l); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func waitFor(path string) error {
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not appear", path)
}

// writeTable runs the case's sfdisk script on the image, through a loop
// device when the table is for another sector size than 512.
func writeTable(ctx context.Context, c *badCase, image string) error {
	script, err := os.ReadFile(filepath.Join(c.dir, c.table))
	if err != nil {
		return err
	}
	target := image
	if c.tableSector != 512 {
		res, err := harness.MustSucceed(ctx, "losetup", "--find", "--show", "--sector-size", strconv.Itoa(c.tableSector), image)
		if err != nil {
			return err
		}
		target = strings.TrimSpace(res.Stdout)
		defer harness.MustSucceed(ctx, "losetup", "--detach", target)
	}
	res, err := harness.RunInput(ctx, script, "sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", target)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("sfdisk %s: exit %d: %s", c.table, res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	return nil
}

// corrupt applies one edit to the image (see tests/bad/testdata/README.md):
//
//	flip ADDR                 invert one byte
//	poke ADDR HEX             write bytes
//	zero ADDR COUNT           zero COUNT sectors
//	truncate SIZE             cut or extend the image
//	header primary|backup FIELD VALUE   set a header field, fix the header CRC
//	entry N FIELD VALUE       set a field of entry N in both arrays, fix all CRCs
//
// ADDR is LBA[+BYTE], LBA a number, "last" or "last-K".
func corrupt(image string, ss int, op string) error {
	f := strings.Fields(op)
	if len(f) == 0 {
		return fmt.Errorf("empty edit")
	}
	d, err := openDisk(image, ss)
	if err != nil {
		return err
	}
	defer d.f.Close()
	switch {
	case f[0] == "flip" && len(f) == 2:
		off, err := d.addr(f[1])
		if err != nil {
			return err
		}
		b := d.read(off, 1)
		b[0] ^= 0xff
		return d.write(off, b)
	case f[0] == "poke" && len(f) == 3:
		off, err := d.addr(f[1])
		if err != nil {
			return err
		}
		b, err := hex.DecodeString(f[2])
		if err != nil {
			return err
		}
		return d.write(off, b)
	case f[0] == "zero" && len(f) == 3:
		off, err := d.addr(f[1])
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(f[2])
		if err != nil {
			return err
		}
		return d.write(off, make([]byte, n*ss))
	case f[0] == "truncate" && len(f) == 2:
		size, err := harness.ParseSize(f[1])
		if err != nil {
			return err
		}
		return d.f.Truncate(size)
	case f[0] == "header" && len(f) == 4:
		lba, err := d.headerLBA(f[1])
		if err != nil {
			return err
		}
		return d.setHeader(lba, f[2], f[3])
	case f[0] == "entry" && len(f) == 4:
		n, err := strconv.Atoi(f[1])
		if err != nil {
			return err
		}
		return d.setEntry(n, f[2], f[3])
	}
	return fmt.Errorf("unknown edit")
}

type rawDisk struct {
	f    *os.File
	ss   int64
	size int64
}

func openDisk(path string, ss int) (*rawDisk, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &rawDisk{f: f, ss: int64(ss), size: st.Size()}, nil
}

func (d *rawDisk) last() int64 { return d.size/d.ss - 1 }

func (d *rawDisk) addr(s string) (int64, error) {
	lbaPart, bytePart, _ := strings.Cut(s, "+")
	var lba int64
	switch {
	case lbaPart == "last":
		lba = d.last()
	case strings.HasPrefix(lbaPart, "last-"):
		k, err := strconv.ParseInt(strings.TrimPrefix(lbaPart, "last-"), 10, 64)
		if err != nil {
			return 0, err
		}
		lba = d.last() - k
	default:
		var err error
		if lba, err = strconv.ParseInt(lbaPart, 10, 64); err != nil {
			return 0, err
		}
	}
	off := lba * d.ss
	if bytePart != "" {
		b, err := strconv.ParseInt(bytePart, 0, 64)
		if err != nil {
			return 0, err
		}
		off += b
	}
	return off, nil
}

func (d *rawDisk) read(off int64, n int) []byte {
	b := make([]byte, n)
	d.f.ReadAt(b, off) // short reads past the end leave zeros
	return b
}

func (d *rawDisk) write(off int64, b []byte) error {
	_, err := d.f.WriteAt(b, off)
	return err
}

// headerLBA: the primary is at LBA 1; the backup where the primary says,
// or at the last LBA when the primary cannot say.
func (d *rawDisk) headerLBA(which string) (int64, error) {
	switch which {
	case "primary":
		return 1, nil
	case "backup":
		h := d.read(d.ss, 92)
		if string(h[:8]) == "EFI PART" {
			if alt := int64(binary.LittleEndian.Uint64(h[32:40])); alt > 1 && alt <= d.last() {
				return alt, nil
			}
		}
		return d.last(), nil
	}
	return 0, fmt.Errorf("header %q: want primary or backup", which)
}

// header field offsets and widths.
var headerFields = map[string]struct{ off, width int }{
	"my_lba": {24, 8}, "alternate_lba": {32, 8}, "first_usable": {40, 8}, "last_usable": {48, 8},
	"entries_lba": {72, 8}, "entry_count": {80, 4}, "entry_size": {84, 4}, "revision": {8, 4},
}

func putField(b []byte, off, width int, v uint64) {
	if width == 4 {
		binary.LittleEndian.PutUint32(b[off:], uint32(v))
	} else {
		binary.LittleEndian.PutUint64(b[off:], v)
	}
}

func (d *rawDisk) setHeader(lba int64, field, value string) error {
	fd, ok := headerFields[field]
	if !ok {
		return fmt.Errorf("unknown header field %q", field)
	}
	v, err := strconv.ParseUint(value, 0, 64)
	if err != nil {
		return err
	}
	h := d.read(lba*d.ss, 92)
	if string(h[:8]) != "EFI PART" {
		return fmt.Errorf("no GPT header at LBA %d", lba)
	}
	putField(h, fd.off, fd.width, v)
	fixHeaderCRC(h)
	return d.write(lba*d.ss, h)
}

func fixHeaderCRC(h []byte) {
	binary.LittleEndian.PutUint32(h[16:20], 0)
	binary.LittleEndian.PutUint32(h[16:20], crc32.ChecksumIEEE(h[:92]))
}

var entryFields = map[string]int{"first_lba": 32, "last_lba": 40, "attributes": 48}

// setEntry edits entry n (1-based) in the arrays of both headers.
func (d *rawDisk) setEntry(n int, field, value string) error {
	off, ok := entryFields[field]
	if !ok {
		return fmt.Errorf("unknown entry field %q", field)
	}
	v, err := strconv.ParseUint(value, 0, 64)
	if err != nil {
		return err
	}
	for _, which := range []string{"primary", "backup"} {
		lba, err := d.headerLBA(which)
		if err != nil {
			return err
		}
		h := d.read(lba*d.ss, 92)
		if string(h[:8]) != "EFI PART" {
			return fmt.Errorf("no %s GPT header at LBA %d", which, lba)
		}
		at := int64(binary.LittleEndian.Uint64(h[72:80])) * d.ss
		count, size := binary.LittleEndian.Uint32(h[80:84]), binary.LittleEndian.Uint32(h[84:88])
		if n < 1 || uint32(n) > count || size != 128 {
			return fmt.Errorf("entry %d not in a %d x %d array", n, count, size)
		}
		array := d.read(at, int(count*size))
		binary.LittleEndian.PutUint64(array[(n-1)*128+off:], v)
		if err := d.write(at, array); err != nil {
			return err
		}
		binary.LittleEndian.PutUint32(h[88:92], crc32.ChecksumIEEE(array))
		fixHeaderCRC(h)
		if err := d.write(lba*d.ss, h); err != nil {
			return err
		}
	}
	return nil
}
