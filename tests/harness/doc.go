// Package harness holds the helpers shared by sprout's integration test
// tiers (differential, loop-device, crash): building bin/sprout, making and
// copying sparse images, running external tools, reading partition tables
// with sfdisk, probing file systems with blkid, inspecting raw GPT headers
// and attaching loop devices.
//
// The helpers are plain functions that return errors; the tiers decide
// whether an error fails or skips a test. Nothing here keeps state between
// calls.
package harness
