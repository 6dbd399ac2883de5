package encrypt

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/tests/harness"
)

func TestMain(m *testing.M) {
	if os.Getenv(envGuest) == "1" {
		guestMain()
	}
	os.Exit(m.Run())
}

const (
	seed     = "0123456789abcdef0123456789abcdef"
	guestKey = "/etc/sprout-test.key"
)

// hostCase is a case as the host writes it into the initramfs.
type hostCase struct {
	name    string
	defs    map[string]string
	keyFile bool // pass --key-file= (else: the empty key)
	args    []string
	// files are put in place (path → content) before both tools run and
	// removed after.
	files map[string]string
	size  int64
	// opens is how each partition must open, by number: "key" (the key
	// file or the empty key), "tpm2" (the token), "key+tpm2", "plain".
	opens []string
}

// cases: every Encrypt= mode, the empty key, and Encrypt= without
// Format= (252 makes ext4).
var cases = []hostCase{
	{name: "modes", keyFile: true, size: 256 << 20, opens: []string{"key", "tpm2", "key+tpm2", "plain"}, defs: map[string]string{
		"20-home.conf": "[Partition]\nType=home\nFormat=ext4\nEncrypt=key-file\nLabel=home\nSizeMaxBytes=64M\n",
		"40-var.conf":  "[Partition]\nType=var\nFormat=ext4\nEncrypt=tpm2\nSizeMaxBytes=64M\n",
		"50-tmp.conf":  "[Partition]\nType=tmp\nFormat=ext4\nEncrypt=key-file+tpm2\nSizeMaxBytes=64M\n",
		"60-srv.conf":  "[Partition]\nType=srv\nFormat=vfat\nSizeMaxBytes=32M\n",
	}},
	{name: crashCase, size: 128 << 20, opens: []string{"tpm2"}, defs: map[string]string{
		"40-var.conf": "[Partition]\nType=var\nFormat=ext4\nEncrypt=tpm2\nSizeMaxBytes=64M\n",
	}},
	// The empty key, Encrypt= without Format= (ext4 in 252), and a
	// signed PCR policy: the public key 252 finds by itself in
	// /run/systemd, where a systemd initrd's tmpfiles put a UKI's, with
	// other PCRs than 11. The guest has no signature, so only the empty
	// key opens var (the signed-policy unlock is scenario t's boot).
	{name: "empty-key-signed-policy", size: 160 << 20, opens: []string{"plain", "key", "key"},
		args:  []string{"--tpm2-public-key-pcrs=7+11"},
		files: map[string]string{"/run/systemd/tpm2-pcr-public-key.pem": guestPublicKey}, defs: map[string]string{
			"10-esp.conf": "[Partition]\nType=esp\nFormat=vfat\nSizeMinBytes=32M\nSizeMaxBytes=32M\n",
			"30-srv.conf": "[Partition]\nType=srv\nEncrypt=yes\nSizeMaxBytes=48M\n",
			"40-var.conf": "[Partition]\nType=var\nFormat=ext4\nEncrypt=key-file+tpm2\nSizeMaxBytes=48M\n",
		}},
}

// guestPublicKey is a PEM public key in the guest (a fixed test key: the
// token stores it, nothing is signed with it).
const guestPublicKey = "/etc/sprout-test-pcr-public-key.pem"

const testPublicKeyPEM = `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA24ekwMbgfaQPvAjKeXXl
w3BvawLhDn8JqZLmD4uZKzmmLVg4rgNtgxFYYfZF6X3oBBeNtGXq9wduv7i8gz1V
4pxFEsIQtcn65VMUErGjpZwh+VQhSKCIkEeRZ0IYU6KsQR1ybRgyXFidMsmMVYkC
yv0QWjNMGS4H6Q6O0N1I8ewHo06YFBAexILRsqZxTZO/B/CYQtCGjTfSK9iZ8UNg
em3tIdnecK8ieIVWtrWZoJ1vQ2qAcBdoABXpwQXiHvy6dpxRb/PTszEOjTyisDfV
5W4UQL0LYtv00ItZpNLBy7d0gUQREwJanZ9QycwJrEYC7dpcaZqhvVsMl8TTztqA
XQIDAQAB
-----END PUBLIC KEY-----
`

// crashCase is also run with sprout killed in some of its children
// (sprout asks 1 systemd-cryptenroll --version, then pkg/luks.Make for
// Encrypt=tpm2 runs 2 cryptsetup luksFormat, 3 open, 4 mkfs.ext4, 5
// close, 6 luksAddKey, 7 luksKillSlot, 8 systemd-cryptenroll): in the middle of the LUKS2 format, of mkfs inside
// the volume, with only the temporary key left, and of the enrollment.
// Each crash costs a run under TCG (about a minute), so two: in the
// middle of the LUKS2 format, and with only the temporary key left (the
// state a crash in the enrollment also leaves). A crash in mkfs is the
// crash tier's (mkfs killed at each of its writes).
const crashCase = "tpm2-crash"

var crashPoints = []int{2, 7}

// crashIn is the program each crash point must kill: a probe added in
// front of them would otherwise move the crashes silently.
var crashIn = map[int]string{2: "cryptsetup luksFormat", 7: "cryptsetup luksKillSlot"}

// oracleCases are run against the chroot oracles too: one Encrypt=tpm2
// volume, which shows the volume key's size, the sector size, the label
// and the token (each LUKS2 format with an Argon2 key slot costs tens of
// seconds under TCG; the tpm2 volume has none).
var oracleCases = []string{crashCase}

// guestLimit: from 258 on systemd-repart mounts every file system it
// makes (to write systemd-validatefs's extended attributes, AddValidateFS=
// on by default), and that mount fails in this guest ("Failed to mount
// /dev/mapper/luks-repart-… on /run/systemd/mount-root: No such file or
// directory"), so those versions are not compared here; the summary line
// says so.
const guestLimit = 258

// chrootIgnored are token fields left out of the comparison with a chroot
// oracle: from 257 on systemd-cryptenroll (which sprout runs) records the
// TPM2 primary key's algorithm, systemd-repart's own enrollment does not;
// both unlock the same way (docs/compatibility.md).
var chrootIgnored = map[string]bool{"tpm2-primary-alg": true}

// guestPrograms run in the guest, with their libraries.
var guestPrograms = []string{harness.HostRepart, "cryptsetup", "systemd-cryptenroll", "mkfs.ext4", "mke2fs", "mkfs.vfat", "mkfs.fat", "sfdisk", "blkid"}

func TestEncrypt(t *testing.T) {
	harness.RequireRoot(t, "the encryption tier (QEMU, loop devices)")
	harness.RequireTools(t, append([]string{"qemu-system-x86_64", "ldd", "swtpm", "apt-get", "dpkg"}, guestPrograms...)...)
	ctx := context.Background()
	work := t.TempDir()
	sprout, err := harness.SproutBinary(ctx, work)
	if err != nil {
		t.Fatal(err)
	}
	kernel, modDir, err := harness.FetchKernel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tss, err := tss2Libraries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The chroot oracles run in the guest too, shared over 9p; sprout runs
	// beside each in its chroot, with that system's cryptsetup and
	// systemd-cryptenroll.
	var chroots []harness.Oracle
	var notInGuest []string
	if oracles, notes, err := harness.OracleSelection(ctx); err != nil {
		t.Fatal(err)
	} else {
		for _, n := range notes {
			t.Log(n)
		}
		for _, o := range oracles {
			switch {
			case o.Root == "":
			case o.Version >= guestLimit:
				notInGuest = append(notInGuest, o.VersionLine)
			default:
				chroots = append(chroots, o)
			}
		}
	}
	initrd := filepath.Join(work, "initrd.cpio")
	if err := buildInitramfs(initrd, sprout, modDir, tss, chroots); err != nil {
		t.Fatalf("guest initramfs: %v", err)
	}
	start := time.Now()
	results, err := bootGuest(ctx, work, kernel, initrd, chroots)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guest: %d results in %s", len(results), time.Since(start).Round(time.Second))

	same := 0
	for _, c := range cases {
		oracle, ours := results[c.name+"/systemd-repart"], results[c.name+"/sprout"]
		if oracle == nil || ours == nil {
			t.Errorf("%s: no result from the guest (252: %v, sprout: %v)", c.name, oracle != nil, ours != nil)
			continue
		}
		problems := compare(oracle, ours, nil)
		for i, want := range c.opens {
			if i < len(ours.Partitions) && ours.Partitions[i].Opened != want {
				problems = append(problems, fmt.Sprintf("partition %d opens %q, want %q", i+1, ours.Partitions[i].Opened, want))
			}
		}
		if len(problems) > 0 {
			t.Errorf("%s: sprout differs from systemd-repart 252:\n  %s", c.name, strings.Join(problems, "\n  "))
			continue
		}
		same++
	}
	// The chroot oracles: their systemd-repart and sprout under the
	// matching --compat=, in the chroot.
	var versions []string
	for _, o := range chroots {
		v := strconv.Itoa(o.Version)
		for _, c := range cases {
			if !contains(oracleCases, c.name) {
				continue
			}
			oracle, ours := results[c.name+"/systemd-repart-"+v], results[c.name+"/sprout-"+v]
			if oracle == nil || ours == nil {
				t.Errorf("%s, %s: no result from the guest (oracle: %v, sprout: %v)", c.name, o, oracle != nil, ours != nil)
				continue
			}
			problems := compare(oracle, ours, chrootIgnored)
			for i, want := range c.opens {
				if i < len(ours.Partitions) && ours.Partitions[i].Opened != want {
					problems = append(problems, fmt.Sprintf("partition %d opens %q, want %q", i+1, ours.Partitions[i].Opened, want))
				}
			}
			if len(problems) > 0 {
				t.Errorf("%s: sprout differs (%s):\n  %s", c.name, o.CompatNote(int(compat.Newest)), strings.Join(problems, "\n  "))
				continue
			}
			versions = append(versions, o.VersionLine)
		}
	}
	// Each crash leaves no partition, and the next run converges on 252's
	// result.
	converged := 0
	for _, k := range crashPoints {
		oracle := results[crashCase+"/systemd-repart"]
		r := results[fmt.Sprintf("%s/sprout killed at child %d", crashCase, k)]
		switch {
		case oracle == nil || r == nil:
			t.Errorf("crash point %d: no result from the guest", k)
		case r.Killed == "" || strings.HasPrefix(r.Killed, "not killed") || strings.HasPrefix(r.Killed, "start:"):
			t.Errorf("crash point %d: %s", k, r.Killed)
		case !strings.HasPrefix(r.Killed, crashIn[k]):
			t.Errorf("crash point %d killed %q, not %s", k, r.Killed, crashIn[k])
		case strings.Contains(r.TableAfterKill, `"partitions"`):
			t.Errorf("crash point %d (killed in %s): a partition is visible after the crash:\n%s", k, r.Killed, r.TableAfterKill)
		default:
			if problems := compare(oracle, r, nil); len(problems) > 0 {
				t.Errorf("crash point %d (killed in %s): the next run differs from 252:\n  %s", k, r.Killed, strings.Join(problems, "\n  "))
				continue
			}
			t.Logf("crash point %d: killed in %s; no partition visible; the next run converged", k, r.Killed)
			converged++
		}
	}
	line := fmt.Sprintf("encryption differential (QEMU guest, swtpm): %d cases, %d same as systemd-repart 252 (table, LUKS2 header, key slots, tokens, unlock, file system inside); %d crash points (sprout killed in cryptsetup luksFormat and with only the temporary key slot left), %d converged; case %q also same as %s, each in its Debian chroot with its cryptsetup and systemd-cryptenroll",
		len(cases), same, len(crashPoints), converged, strings.Join(oracleCases, ","), strings.Join(versions, ", "))
	if len(notInGuest) > 0 {
		line += fmt.Sprintf("; NOT COMPARED in the guest: %s (from %d on systemd-repart mounts the file systems it makes, which fails in this guest)", strings.Join(notInGuest, ", "), guestLimit)
	}
	t.Log(line)
	fmt.Println(line)
	if f := os.Getenv("SPROUT_DIFF_SUMMARY"); f != "" {
		if err := harness.AppendLine(f, line); err != nil {
			t.Error(err)
		}
	}
}

// compare lists the differences that matter between 252's and sprout's
// results of one case.
func compare(oracle, ours *toolResult, ignored map[string]bool) []string {
	var p []string
	if oracle.Exit != 0 {
		return []string{fmt.Sprintf("systemd-repart exited %d:\n%s", oracle.Exit, oracle.Output)}
	}
	if ours.Exit != 0 {
		return []string{fmt.Sprintf("sprout exited %d:\n%s", ours.Exit, ours.Output)}
	}
	if !jsonEqual(oracle.Table, ours.Table) {
		p = append(p, fmt.Sprintf("tables differ:\n252:    %s\nsprout: %s", oracle.Table, ours.Table))
	}
	if len(oracle.Partitions) != len(ours.Partitions) {
		return append(p, fmt.Sprintf("%d partitions, 252 has %d", len(ours.Partitions), len(oracle.Partitions)))
	}
	for i, o := range oracle.Partitions {
		s := ours.Partitions[i]
		if !reflect.DeepEqual(o.LUKS, s.LUKS) {
			p = append(p, fmt.Sprintf("partition %d: LUKS2 %v, 252's %v", o.Number, s.LUKS, o.LUKS))
		}
		om, sm := essentials(o.Metadata, ignored), essentials(s.Metadata, ignored)
		if om == "" || om != sm {
			p = append(p, fmt.Sprintf("partition %d: LUKS2 metadata differs:\n252:    %s\nsprout: %s", o.Number, om, sm))
		}
		if o.Opened != s.Opened || strings.HasPrefix(s.Opened, "not opened") {
			p = append(p, fmt.Sprintf("partition %d: opened %q, 252's %q", o.Number, s.Opened, o.Opened))
		}
		if !reflect.DeepEqual(o.FileSystem, s.FileSystem) {
			p = append(p, fmt.Sprintf("partition %d: file system %v, 252's %v", o.Number, s.FileSystem, o.FileSystem))
		}
	}
	return p
}

// random are the metadata fields that differ from volume to volume
// (salts, digests, the sealed TPM2 blob) or depend on a PBKDF benchmark
// (iterations, time, memory, threads). The TPM2 policy hash is compared:
// both volumes are sealed in one guest to the same PCRs (and public key),
// so a policy bound to other PCRs, banks or keys shows there.
var random = map[string]bool{
	"salt": true, "digest": true, "iterations": true, "time": true, "memory": true, "cpus": true,
	"tpm2-blob": true,
}

// essentials is the LUKS2 JSON metadata without the random fields, in a
// canonical form ("" when there is none).
func essentials(raw json.RawMessage, ignored map[string]bool) string {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return ""
	}
	var strip func(any) any
	strip = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if random[k] || ignored[k] {
					delete(v, k)
				} else {
					v[k] = strip(x)
				}
			}
		case []any:
			for i := range v {
				v[i] = strip(v[i])
			}
		}
		return v
	}
	b, _ := json.Marshal(strip(v)) // maps marshal with sorted keys
	return string(b)
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// tss2Libraries returns the TPM2 software stack libraries 252 and
// systemd-cryptenroll load at run time: the host's when installed, else
// Debian's packages unpacked under build/encrypt (nothing is installed).
func tss2Libraries(ctx context.Context) ([]string, error) {
	const libDir = "/usr/lib/x86_64-linux-gnu"
	if host, _ := filepath.Glob(filepath.Join(libDir, "libtss2-*.so.*")); len(host) > 0 {
		return host, nil
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, "build/encrypt/tss2")
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		script := `set -e; rm -rf "$1"; mkdir -p "$1/debs"; cd "$1/debs"
apt-get download libtss2-esys-3.0.2-0 libtss2-mu0 libtss2-rc0 libtss2-sys1 libtss2-tcti-device0 >&2
for f in *.deb; do dpkg -x "$f" "$1/root"; done; touch "$1/.complete"`
		if _, err := harness.MustSucceed(ctx, "bash", "-c", script, "fetch-tss2", dir); err != nil {
			return nil, fmt.Errorf("fetch the TPM2 libraries: %w", err)
		}
	}
	return filepath.Glob(filepath.Join(dir, "root", libDir, "libtss2-*.so.*"))
}

// buildInitramfs packs the test binary as /init, sprout, 252 and the
// tools with their libraries (and those loaded at run time), the kernel
// modules, the key and the cases.
func buildInitramfs(out, sprout, modDir string, tss []string, chroots []harness.Oracle) error {
	r, err := harness.NewGuestInitramfs()
	if err != nil {
		return err
	}
	files := map[string]string{"sbin/sprout": sprout}
	for _, p := range guestPrograms {
		path, err := exec.LookPath(p)
		if err != nil {
			return err
		}
		files["usr/sbin/"+filepath.Base(p)] = path
	}
	// Loaded with dlopen, so ldd does not name them: libcryptsetup (252),
	// libgcc_s (thread exit), the systemd-tpm2 token plugin of cryptsetup.
	for _, lib := range []string{"/usr/lib/x86_64-linux-gnu/libcryptsetup.so.12", "/lib/x86_64-linux-gnu/libgcc_s.so.1",
		"/usr/lib/x86_64-linux-gnu/cryptsetup/libcryptsetup-token-systemd-tpm2.so"} {
		files[strings.TrimPrefix(lib, "/")] = lib
	}
	// cryptsetup looks for token plugins under /lib, which the guest does
	// not link to /usr/lib.
	files["lib/x86_64-linux-gnu/cryptsetup/libcryptsetup-token-systemd-tpm2.so"] = "/usr/lib/x86_64-linux-gnu/cryptsetup/libcryptsetup-token-systemd-tpm2.so"
	for name, src := range files {
		if err := r.CopyProgram(name, src); err != nil {
			return err
		}
	}
	for _, lib := range tss {
		if err := r.CopyFile("usr/lib/x86_64-linux-gnu/"+filepath.Base(lib), lib); err != nil {
			return err
		}
	}
	if err := r.CopyFile("etc/mke2fs.conf", "/etc/mke2fs.conf"); err != nil {
		return err
	}
	r.File(strings.TrimPrefix(guestKey, "/"), []byte("sprout test key\x00\x01\n"), 0o600)
	r.File(strings.TrimPrefix(guestPublicKey, "/"), []byte(testPublicKeyPEM), 0o644)
	cfg := guestConfig{CrashCase: crashCase, CrashPoints: crashPoints}
	for _, o := range chroots {
		cfg.Oracles = append(cfg.Oracles, guestOracle{Tag: o.Name, Version: o.Version, Compat: o.Compat(int(compat.Newest))})
	}
	if len(chroots) > 0 {
		cfg.OracleCases = oracleCases
	}
	for _, m := range [][]string{{"loop", "dm_crypt", "xts"}, {"ecb"}, {"cbc"}, {"aesni_intel"}, {"algif_skcipher"}, {"virtio_pci"}, {"9p", "9pnet_virtio"}, {"overlay"}, {"ext4"}, {"vfat"}} {
		mods, err := harness.KernelModules(modDir, m)
		if err != nil {
			if m[0] == "loop" || (m[0] == "9p" || m[0] == "virtio_pci" || m[0] == "overlay") && len(chroots) > 0 {
				return err
			}
			continue // built in, or not in this kernel: the guest does without
		}
		for _, mod := range mods {
			name := "lib/modules/" + mod
			if !contains(cfg.Modules, "/"+name) {
				if err := r.CopyFile(name, filepath.Join(modDir, mod)); err != nil {
					return err
				}
				cfg.Modules = append(cfg.Modules, "/"+name)
			}
		}
	}
	for _, c := range cases {
		dir := "cases/" + c.name
		for name, body := range c.defs {
			r.File(dir+"/"+name, []byte(body), 0o644)
		}
		gc := guestCase{Name: c.name, Defs: "/" + dir, Size: c.size, Files: map[string]string{},
			Args:       append([]string{"--dry-run=no", "--empty=force", "--seed=" + seed, "--definitions=/" + dir, "--tpm2-pcrs=7"}, c.args...),
			SproutArgs: []string{"--compat=252"}} // the guest's own oracle is the host's 252
		for path, from := range c.files {
			gc.Files[path] = from
		}
		if c.keyFile {
			gc.Args = append(gc.Args, "--key-file="+guestKey)
			gc.KeyFile = guestKey
		}
		cfg.Cases = append(cfg.Cases, gc)
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	r.File(strings.TrimPrefix(guestConf, "/"), data, 0o644)
	return r.WriteTo(out)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// bootGuest runs the VM with a software TPM2 and returns the results by
// "case/tool".
func bootGuest(ctx context.Context, work, kernel, initrd string, chroots []harness.Oracle) (map[string]*toolResult, error) {
	tpmDir := filepath.Join(work, "tpm")
	if err := os.MkdirAll(tpmDir, 0o700); err != nil {
		return nil, err
	}
	sock, pidFile := filepath.Join(tpmDir, "sock"), filepath.Join(tpmDir, "pid")
	if _, err := harness.MustSucceed(ctx, "swtpm", "socket", "--tpm2", "--daemon", "--tpmstate", "dir="+tpmDir,
		"--ctrl", "type=unixio,path="+sock, "--pid", "file="+pidFile); err != nil {
		return nil, err
	}
	defer stopPid(pidFile)
	serial := filepath.Join(work, "serial.log")
	accel := "tcg"
	if os.Getenv("SPROUT_QEMU_ACCEL") == "kvm" {
		accel = "kvm"
	}
	argv := []string{"qemu-system-x86_64", "-nodefaults", "-no-user-config", "-machine", "q35", "-accel", accel, "-cpu", "max",
		"-m", "1536", "-smp", "2", "-display", "none", "-monitor", "none", "-serial", "file:" + serial, "-no-reboot",
		"-kernel", kernel, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 loglevel=4 no_timer_check " + envGuest + "=1",
		"-chardev", "socket,id=chrtpm,path=" + sock, "-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0",
	}
	for _, o := range chroots {
		argv = append(argv, "-virtfs", fmt.Sprintf("local,path=%s,mount_tag=%s,security_model=none,readonly=on", o.Root, o.Name))
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	console, _ := os.ReadFile(serial)
	if err != nil {
		return nil, fmt.Errorf("%s: %w\n%s\nconsole:\n%s", harness.ShellJoin(argv), err, out, lastLines(string(console), 40))
	}
	results := map[string]*toolResult{}
	sc := bufio.NewScanner(strings.NewReader(string(console)))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, errorPrefix); i >= 0 {
			return nil, fmt.Errorf("guest: %s", line[i+len(errorPrefix):])
		}
		if i := strings.Index(line, resultPrefix); i >= 0 {
			var r toolResult
			if err := json.Unmarshal([]byte(line[i+len(resultPrefix):]), &r); err != nil {
				return nil, fmt.Errorf("guest result: %w", err)
			}
			results[r.Case+"/"+r.Tool] = &r
		}
	}
	if len(results) == 0 {
		return nil, fmt.Errorf("the guest reported nothing; console:\n%s", lastLines(string(console), 40))
	}
	return results, nil
}

func stopPid(pidFile string) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
	}
}

// TestEssentialsComparePolicyHash: two volumes sealed to other PCRs differ
// in what compare looks at; the sealed blob alone does not (it is random).
func TestEssentialsComparePolicyHash(t *testing.T) {
	token := func(blob, policy string) json.RawMessage {
		return json.RawMessage(`{"tokens":{"0":{"type":"systemd-tpm2","tpm2-pcrs":[7],"tpm2-blob":"` + blob + `","tpm2-policy-hash":"` + policy + `"}}}`)
	}
	if essentials(token("aa", "11"), nil) != essentials(token("bb", "11"), nil) {
		t.Error("a different sealed blob makes the metadata differ")
	}
	if essentials(token("aa", "11"), nil) == essentials(token("aa", "22"), nil) {
		t.Error("a different TPM2 policy hash is not seen")
	}
}
