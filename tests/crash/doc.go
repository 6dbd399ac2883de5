// Package crash is sprout's crash-point tier: for each scenario under
// testdata/ it enumerates every write a real run makes to the disk —
// sprout's own and those of its mkfs children — and, for every one of
// them, runs sprout on a fresh copy of the disk, stops it right before
// that write, checks what the crash left (gptstate_test.go says what a
// valid GPT after a crash is), and runs sprout again to completion: the
// result must be an uninterrupted run's, and one more run must write
// nothing.
//
// Every scenario grows a disk and adds partitions, so a run writes two
// tables: first the old table with its backup moved to the new end of
// the disk (the RELOCATED table), and only after the new partitions'
// ranges — where the old backup GPT usually lies — are wiped and
// formatted, the NEW table. A crash may leave the old, the relocated or
// the new table, or a state between two of them with one intact copy of
// each; until a relocated or new copy is intact, the old backup must be.
// The relocated table the tier expects is made independently, by `sfdisk
// --relocate gpt-bak-std` on the old disk, and the reference run checks
// that sprout's first table is that, byte for byte.
//
// A scenario may also ask for a factory reset (testdata/README.md):
// the first table is then the relocated old table without the erased
// partitions, and their bytes must stay while a reader can still find the
// old table.
//
// Three kinds of crash are made:
//
//   - power cut (TestCrashPoints): a ptrace tracer (harness.TraceWrites)
//     kills the whole process tree with SIGKILL while one write is held
//     at its system call entry, so every earlier write is on the disk and
//     no later one. A write is named by program, byte range and
//     occurrence, so each write of the uninterrupted run is the one cut
//     off in exactly one crash point, although the parallel mkfs runs
//     interleave differently every time.
//   - mkfs killed (TestCrashPoints): only the mkfs child is killed at one
//     of its writes; sprout lives on, must fail and must write no table
//     after it: the disk is the relocated one (sprout relocates before
//     any mkfs starts; the old one if mkfs ran before the relocation),
//     table copies and protective MBR byte for byte.
//   - dm-log-writes (TestLogWrites): sprout runs once in a QEMU VM with
//     Debian's kernel on a device that logs every write bio reaching the
//     disk, with its FLUSH/FUA flags; every prefix of the log that changes
//     the disk is replayed onto a copy of the old disk and examined. This
//     sees the writes as the disk does — after the page cache, the loop
//     devices and mkfs's buffering — which killing processes cannot.
//
// None of them reorders writes between two flushes, as a disk's volatile
// cache may.
//
// The disk is an image file on a loop device (with the scenario's logical
// sector size), booted afresh before every run: a new loop device whose
// partitions the kernel learns from the table on the disk (partx -a plays
// this kernel's missing GPT parser). Between runs the loop device is
// detached, which writes everything back into the image.
//
// Environment: SPROUT_BIN (binary under test), SPROUT_REQUIRE_ROOT=1 and
// SPROUT_REQUIRE_TOOLS=1 (fail instead of skip), SPROUT_CRASH_JOBS
// (crash points examined at once, default 4), SPROUT_CRASH_SCENARIO (run
// only this scenario), SPROUT_CRASH_POINTS (e.g. "1-20,57": only these
// points), SPROUT_CRASH_KEEP (directory that receives the disk images of
// failing points), SPROUT_CRASH_DIR (where the images live; default
// /dev/shm when it is a tmpfs), SPROUT_CRASH_SUMMARY (file that receives
// the "N crash points, N converged" lines), SPROUT_QEMU_ACCEL=kvm (the
// dm-log-writes VM uses TCG otherwise).
package crash
