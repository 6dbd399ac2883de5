// Package loop is sprout's loop-device test tier: it runs the sprout binary
// on real block devices (loop devices over sparse files, with 512- to
// 4096-byte logical sectors) and checks what the kernel, the file systems
// and the bytes on the device say afterwards.
//
// This host's kernel has no GPT parser, so partitions exist in the kernel
// only through BLKPG: sprout's own, or `partx --add` for fixtures.
//
// The tests need root, loop devices and a few tools (systemd-repart 252
// builds the base images; strace counts syscalls). Without them they skip,
// and with SPROUT_REQUIRE_ROOT=1 (set by the Makefile) they fail instead.
// Run with: go test ./tests/loop/ -v
package loop
