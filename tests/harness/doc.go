// Package harness holds the helpers shared by sprout's tests, the tiers
// under tests/ and the tests of pkg/...: what a test needs from the
// machine (RequireTools, RequireRoot, RequireLoopDevices,
// RequireHostOracle, Unavailable: skip, or fail under SPROUT_REQUIRE_*),
// building bin/sprout, making and copying sparse images, running external
// tools, reading partition tables with sfdisk (the one sfdisk --json
// parser), probing file systems with blkid, reading raw GPT headers (the
// one reader tests use besides pkg/gpt itself), attaching loop devices,
// and running the systemd-repart oracles (the host's 252 and the Debian
// chroots scripts/oracles.sh builds: oracle.go).
//
// It imports no sprout package, so that the tests of any package can
// import it (the compiler would refuse the cycle). Most helpers are plain
// functions that return errors, and the caller decides whether an error
// fails or skips a test; the Require helpers take the test. Nothing here
// keeps state between calls.
package harness
