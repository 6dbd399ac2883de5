// Package differential is sprout's differential test tier: it runs
// systemd-repart 252 (the oracle) and sprout on identical copies of the same
// disk images and requires the same partition tables, file-system
// signatures, JSON reports and exit codes.
//
// The tier has two parts: named scenarios (testdata/differential/<name>/,
// taken from systemd's own test suite and from verified vectors) and
// seeded random cases generated from a few cached base images. See
// README.md in this directory for how to run it.
package differential
