package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// HostRepart is Debian 12's systemd-repart 252, the host's oracle.
const HostRepart = "/usr/bin/systemd-repart"

// Oracle chroots: scripts/oracles.sh builds them (scripts/deps.sh runs it),
// /var/cache/sprout/README says what they hold.
// Test58Seed is the --seed of upstream's TEST-58 (systemd's repart test),
// which the named scenarios and bad cases use so that their UUIDs can be
// checked against upstream's published ones.
const Test58Seed = "750b6cd5c4ae4012a15e7be3c29e6a47"

const (
	OracleCache      = "/var/cache/sprout/oracles"
	oracleStamp      = ".sprout-oracle" // written by oracles.sh when a chroot is complete
	EnvOracles       = "SPROUT_ORACLES" // which oracles a tier compares with (OracleSelection)
	EnvRequireOracle = "SPROUT_REQUIRE_ORACLE"
)

// OracleSuites are the chroots the tiers compare with by default, oldest
// first: Debian 12's backports (254), Debian 13 (257) and Debian testing.
var OracleSuites = []string{"bookworm-backports", "trixie", "forky"}

// Oracle is one systemd-repart sprout is compared with: the host's, or the
// one in a Debian chroot. Run executes it (or another program of the same
// system: its sfdisk, mkfs) with the caller's paths visible at the same
// places.
type Oracle struct {
	Name        string // "host", or the chroot's Debian suite ("trixie", "forky")
	Root        string // the chroot; "" for the host
	Path        string // systemd-repart (inside Root)
	Version     int    // systemd's version (252, 257, 262)
	VersionLine string // first line of `systemd-repart --version`
	runner      string // scripts/oracle-run.sh, for a chroot
}

func (o Oracle) String() string {
	if o.Root == "" {
		return fmt.Sprintf("%s (host)", o.VersionLine)
	}
	return fmt.Sprintf("%s (%s chroot)", o.VersionLine, o.Name)
}

// HostOracle returns the host's systemd-repart.
func HostOracle(ctx context.Context) (Oracle, error) {
	o := Oracle{Name: "host", Path: HostRepart}
	return o, o.probe(ctx)
}

// ChrootOracle returns the systemd-repart of a chroot oracles.sh built
// (only complete ones: they carry the stamp file).
func ChrootOracle(ctx context.Context, suite string) (Oracle, error) {
	return chrootOracle(ctx, OracleCache, suite)
}

func chrootOracle(ctx context.Context, cache, suite string) (Oracle, error) {
	root := filepath.Join(cache, suite)
	if _, err := os.Stat(filepath.Join(root, oracleStamp)); err != nil {
		return Oracle{}, fmt.Errorf("oracle %s: no complete chroot at %s (scripts/oracles.sh %s builds it): %w", suite, root, suite, err)
	}
	mod, err := ModuleRoot()
	if err != nil {
		return Oracle{}, err
	}
	o := Oracle{Name: suite, Root: root, Path: "/usr/bin/systemd-repart", runner: filepath.Join(mod, "scripts", "oracle-run.sh")}
	return o, o.probe(ctx)
}

var versionRE = regexp.MustCompile(`^systemd (\d+)`)

// probe runs --version; an oracle that does not start is an error here,
// before any case depends on it.
func (o *Oracle) probe(ctx context.Context) error {
	res, err := o.Run(ctx, nil, o.Path, "--version")
	if err == nil && res.ExitCode != 0 {
		err = fmt.Errorf("exit %d: %s", res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	if err != nil {
		return fmt.Errorf("oracle %s: systemd-repart --version: %w", o.Name, err)
	}
	line, _, _ := strings.Cut(res.Stdout, "\n")
	m := versionRE.FindStringSubmatch(line)
	if m == nil {
		return fmt.Errorf("oracle %s: cannot read a version from %q", o.Name, line)
	}
	o.Version, _ = strconv.Atoi(m[1])
	o.VersionLine = line
	return nil
}

// OracleSelection returns the oracles named by $SPROUT_ORACLES: a comma
// list of "host", suites ("trixie", "forky", "bookworm-backports") or
// versions ("252", "257", "262", "254"), or "all" (every complete chroot);
// unset means the host and OracleSuites. A named oracle that is missing is
// an error; a default one that is missing is skipped with a note, unless
// $SPROUT_REQUIRE_ORACLE=1 (make test), which makes it an error too.
func OracleSelection(ctx context.Context) (oracles []Oracle, notes []string, err error) {
	names, explicit := oracleNames()
	for _, name := range names {
		var o Oracle
		var err error
		if name == "host" || name == "252" {
			o, err = HostOracle(ctx)
		} else {
			o, err = ChrootOracle(ctx, suiteOf(name))
		}
		if err != nil {
			if explicit || EnvBool(EnvRequireOracle) {
				return nil, notes, err
			}
			notes = append(notes, fmt.Sprintf("%v: not compared (set %s=1 to make this a failure)", err, EnvRequireOracle))
			continue
		}
		oracles = append(oracles, o)
	}
	if len(oracles) == 0 {
		return nil, notes, errors.New("no systemd-repart oracle available")
	}
	slices.SortStableFunc(oracles, func(a, b Oracle) int { return a.Version - b.Version })
	return oracles, notes, nil
}

func oracleNames() (names []string, explicit bool) {
	v := strings.TrimSpace(os.Getenv(EnvOracles))
	switch v {
	case "":
		return append([]string{"host"}, OracleSuites...), false
	case "all":
		names = []string{"host"}
		entries, _ := os.ReadDir(OracleCache)
		for _, e := range entries {
			if _, err := os.Stat(filepath.Join(OracleCache, e.Name(), oracleStamp)); err == nil {
				names = append(names, e.Name())
			}
		}
		return names, true
	}
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names, true
}

// suiteOf maps a version number to the chroot that has it.
func suiteOf(name string) string {
	switch name {
	case "254":
		return "bookworm-backports"
	case "257":
		return "trixie"
	case "262", "testing":
		return "forky"
	}
	return name
}

// Compat is the --compat= version sprout is run with against this oracle:
// the oracle's version, or newest when the oracle is newer than sprout
// supports (the tier must say so: see CompatNote).
func (o Oracle) Compat(newest int) int { return min(o.Version, newest) }

// CompatNote is the line a tier prints about this oracle: the version it
// compares with and, when Debian testing moved past what sprout supports,
// that it compares under the newest supported behaviour instead.
func (o Oracle) CompatNote(newest int) string {
	if o.Version > newest {
		return fmt.Sprintf("compared with %s: NEWER than sprout's newest supported version %d; compared under --compat=%d (supporting %d is new work)",
			o, newest, newest, o.Version)
	}
	return fmt.Sprintf("compared with %s under --compat=%d", o, o.Compat(newest))
}

// Run executes argv like harness.Run; argv[0] is a program of the
// oracle's system (o.Path for its systemd-repart). In a chroot it runs
// through scripts/oracle-run.sh: a private mount namespace where the
// chroot's root is a mount point, with /dev, /proc, /sys, /tmp and every
// absolute path of the command line visible at its own place; the mounts
// end with the program. A program that could not be started (the
// namespace, a mount, the chroot, a missing binary or library) is an
// error, never an exit code to compare; so is one killed by a signal.
func (o Oracle) Run(ctx context.Context, env []string, argv ...string) (Result, error) {
	res, err := o.run(ctx, env, argv)
	if err != nil && res.Signal == syscall.SIGABRT {
		if m := assertionRE.FindString(res.Stderr); m != "" {
			err = fmt.Errorf("%w: %s: %s", ErrOracleAssertion, o, m)
		}
	}
	return res, err
}

// ErrOracleAssertion is an oracle that aborted on one of its own
// assertions: an upstream bug, not an answer sprout could be compared
// with. Tiers count such cases apart (and say so); any other crash is a
// harness failure.
var ErrOracleAssertion = errors.New("systemd-repart aborted on an assertion")

var assertionRE = regexp.MustCompile(`(?m)^.*Assertion .* failed.*$`)

func (o Oracle) run(ctx context.Context, env []string, argv []string) (Result, error) {
	if o.Root == "" {
		return Run(ctx, env, argv...)
	}
	if len(argv) == 0 || !filepath.IsAbs(argv[0]) {
		return Result{}, fmt.Errorf("oracle %s: run %q: the program needs an absolute path", o.Name, argv)
	}
	tmp, err := os.MkdirTemp("", "sprout-oracle-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(tmp)
	marker := filepath.Join(tmp, "started")
	wrapped := append([]string{o.runner, o.Root, "--"}, argv...)
	res, err := Run(ctx, append(slices.Clone(env), "SPROUT_ORACLE_STARTED="+marker), wrapped...)
	res.Argv = argv
	if err != nil {
		return res, fmt.Errorf("oracle %s: %w", o.Name, err)
	}
	if _, serr := os.Stat(marker); serr != nil {
		return res, fmt.Errorf("oracle %s: %s could not be started (exit %d): %s", o.Name, argv[0], res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	if notStarted(res) {
		return res, fmt.Errorf("oracle %s: %s did not start (exit %d): %s", o.Name, argv[0], res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	return res, nil
}

// ShellCommand is a shell-pasteable prefix that runs argv[0] = o.Path
// (for a failing case's repro.sh).
func (o Oracle) ShellCommand(moduleRoot string) string {
	if o.Root == "" {
		return ShellJoin([]string{o.Path})
	}
	return ShellJoin([]string{filepath.Join(moduleRoot, "scripts", "oracle-run.sh"), o.Root, "--", o.Path})
}

// notStarted recognises chroot(1)'s and the dynamic loader's failures.
func notStarted(res Result) bool {
	if res.ExitCode < 125 || res.ExitCode > 127 {
		return false
	}
	return strings.Contains(res.Stderr, "chroot: ") || strings.Contains(res.Stderr, "error while loading shared libraries")
}

// Stamp returns the chroot's stamp (suite, build date, version) for
// reports; empty for the host.
func (o Oracle) Stamp() map[string]string {
	m := map[string]string{}
	if o.Root == "" {
		return m
	}
	f, err := os.Open(filepath.Join(o.Root, oracleStamp))
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			m[k] = v
		}
	}
	return m
}
