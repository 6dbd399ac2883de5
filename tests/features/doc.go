// Package features is the differential tier for the repart.d keys and
// flags systemd added after 252 that act at boot (issue 18): MountPoint=
// and EncryptedVolume= with --generate-fstab=/--generate-crypttab=/
// --append-fstab=, VolumeLabel=, Format=empty, SupplementFor=,
// Subvolumes=/DefaultSubvolume=, --include/--exclude/--defer-partitions*,
// and the image-building keys on partitions that exist.
//
// Each scenario (testdata/features/<name>/scenario.json) runs systemd-
// repart of a Debian chroot (262 from forky; the scenario says the oldest
// version it needs) and sprout on copies of the same image file, with the
// same definitions, seed and flags, and requires the same exit code,
// partition table (sfdisk --json), file systems (blkid TYPE, LABEL, UUID
// of every partition) and generated files (byte for byte), or the
// deliberate difference the step declares (docs/compatibility.md).
// Steps chain on the oracle's result, so a second step is the second
// boot.
//
// Environment: SPROUT_BIN (the binary under test), SPROUT_REQUIRE_ROOT /
// SPROUT_REQUIRE_ORACLE (fail instead of skip), SPROUT_DIFF_SUMMARY (file
// the summary line is appended to), SPROUT_FEATURES_ONLY (a scenario
// name).
package features
