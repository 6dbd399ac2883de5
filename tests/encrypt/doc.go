// Package encrypt is the differential tier for Encrypt=: systemd-repart
// 252 and sprout make the same encrypted partitions from the same
// definitions and seed, compared inside one QEMU guest (Debian's kernel
// has device-mapper and dm-crypt; this host's kernel has not), with a
// software TPM2 (swtpm) for Encrypt=tpm2.
//
// The test binary is the guest's /init. For every case it makes two image
// files in the guest's RAM, runs 252 on one and sprout on the other, and
// reports what it finds; the host side compares:
//
//   - the partition tables (sfdisk --json, the device name left out);
//   - each partition's LUKS2 header: blkid's UUID and label, and
//     cryptsetup luksDump's JSON metadata (segments, key slots with their
//     cipher, key size, area and PBKDF type, tokens with their type, key
//     slots, PCRs, bank and algorithm, digests) without what is random or
//     benchmarked (salts, digests, iterations, memory, the sealed blob);
//   - that the volume opens with the key file (or the empty key), or for
//     Encrypt=tpm2 through its systemd-tpm2 token and the TPM2;
//   - the file system inside: type, label and UUID.
//
// The chroot oracles (254, 257, Debian testing's: scripts/oracles.sh)
// are shared with the guest over 9p, read-only; for each below 258, the
// "tpm2-crash" case (one Encrypt=tpm2 volume) runs its systemd-repart and
// sprout under the matching --compat=, both in the chroot, with that
// system's mkfs, cryptsetup, systemd-cryptenroll and token plugin (a
// sprout runs the tools of the system it is installed on), and is
// compared the same way. 258 and later mount what they format, which
// fails in this guest: the summary names them NOT COMPARED.
//
// All cases run in one boot (TCG: the Argon2 key slots cost seconds each).
//
// Environment: SPROUT_BIN, SPROUT_REQUIRE_ROOT / SPROUT_REQUIRE_TOOLS
// (fail instead of skip), SPROUT_DIFF_SUMMARY (file the summary line is
// appended to), SPROUT_QEMU_ACCEL=kvm (TCG otherwise).
package encrypt
