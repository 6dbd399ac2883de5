// Package bad runs sprout's catalogue of bad inputs (tests/bad/testdata/): broken
// definitions, wrong flags, disks without or with damaged partition
// tables, devices that must not be touched. Every case states the exit
// code and the message sprout must give; a refusal must leave the disk
// byte-identical, and the exit code is compared with systemd-repart 252's
// on the same input. See tests/bad/testdata/README.md for the case format.
package bad
