package features

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/tests/harness"
)

// chrootOracle is the systemd-repart of a Debian chroot that
// scripts/oracles.sh built under /var/cache/sprout/oracles, run through
// harness.Oracle (scripts/oracle-run.sh: a private mount namespace, an
// overlay over the cached chroot so nothing is written into it, the root a
// mount point as 258+ needs, /dev, /proc, /sys, /tmp and the command
// line's absolute paths bound in; an oracle that cannot start is an error).
type chrootOracle struct {
	harness.Oracle
	suite   string
	version int // the oracle's systemd version
	compat  int // the --compat= sprout runs with: version, or sprout's newest when the oracle is newer
	note    string
}

func findOracle(ctx context.Context, suite string) (chrootOracle, error) {
	if tmp := os.TempDir(); tmp != "/tmp" && !strings.HasPrefix(tmp, "/tmp/") {
		return chrootOracle{suite: suite}, fmt.Errorf("$TMPDIR is %s: the oracle sees only /tmp", tmp)
	}
	o, err := harness.ChrootOracle(ctx, suite)
	if err != nil {
		return chrootOracle{suite: suite}, err
	}
	newest := int(compat.Newest)
	return chrootOracle{Oracle: o, suite: suite, version: o.Version, compat: o.Compat(newest), note: o.CompatNote(newest)}, nil
}

// run runs the oracle's systemd-repart with args. An abort on one of its
// own assertions comes back as a result (oracleAborted tells it apart).
func (o chrootOracle) run(ctx context.Context, args ...string) (harness.Result, error) {
	res, err := o.Run(ctx, nil, append([]string{o.Path}, args...)...)
	if errors.Is(err, harness.ErrOracleAssertion) {
		err = nil
	}
	return res, err
}
