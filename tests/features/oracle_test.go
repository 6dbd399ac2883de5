package features

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// chrootOracle is the systemd-repart of a Debian chroot that
// scripts/oracles.sh built under /var/cache/sprout/oracles. It runs in a
// private mount namespace with the chroot's root bound onto itself (262
// formats in a child that remounts / as a slave: the root must be a mount
// point) and /dev, /proc, /sys and /tmp bound in; the images and the
// --root= directories of a case live under /tmp.
type chrootOracle struct {
	suite   string
	root    string
	version int
}

const oracleCache = "/var/cache/sprout/oracles"

var versionRE = regexp.MustCompile(`^systemd (\d+)`)

func findOracle(ctx context.Context, suite string) (chrootOracle, error) {
	o := chrootOracle{suite: suite, root: filepath.Join(oracleCache, suite)}
	if _, err := os.Stat(filepath.Join(o.root, ".sprout-oracle")); err != nil {
		return o, fmt.Errorf("no %s oracle (scripts/oracles.sh %s builds it): %w", suite, suite, err)
	}
	if tmp := os.TempDir(); tmp != "/tmp" && !strings.HasPrefix(tmp, "/tmp/") {
		return o, fmt.Errorf("$TMPDIR is %s: the oracle sees only /tmp", tmp)
	}
	res, err := o.run(ctx, "--version")
	if err != nil || res.ExitCode != 0 {
		return o, fmt.Errorf("%s oracle: systemd-repart --version: %v %s", suite, err, res.Stderr)
	}
	m := versionRE.FindStringSubmatch(res.Stdout)
	if m == nil {
		return o, fmt.Errorf("%s oracle: no version in %q", suite, res.Stdout)
	}
	o.version, _ = strconv.Atoi(m[1])
	return o, nil
}

func (o chrootOracle) run(ctx context.Context, args ...string) (harness.Result, error) {
	script := `R=$0; mount --bind "$R" "$R" && for d in dev proc sys tmp; do mount --rbind /$d "$R/$d" || exit 125; done && exec chroot "$R" systemd-repart "$@"`
	return harness.Run(ctx, nil, append([]string{"unshare", "-m", "--propagation", "private", "sh", "-c", script, o.root}, args...)...)
}
