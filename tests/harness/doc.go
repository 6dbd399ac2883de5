// Package harness holds the helpers shared by sprout's integration test
// tiers (differential, loop-device, crash): building bin/sprout, making and
// copying sparse images, running external tools, reading partition tables
// with sfdisk, probing file systems with blkid, inspecting raw GPT headers,
// attaching loop devices, and running the systemd-repart oracles (the
// host's 252 and the Debian chroots scripts/oracles.sh builds: oracle.go).
//
// The helpers are plain functions that return errors; the tiers decide
// whether an error fails or skips a test. Nothing here keeps state between
// calls.
package harness
