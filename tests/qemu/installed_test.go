//go:build qemu

package qemu

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// TestInstalledPath is the installed-path tier (make test-qemu-installed): sprout
// installed as a user installs it, once with `make install` and once with
// the .deb, and initrds built by the host's own dracut and mkinitramfs
// (tests/install/build-initrds.sh, which also checks the refusals). Each
// of the four initrds boots the seed appliance twice, with the same checks
// as TestQEMU: boot 1 creates home and var (2:1) and the root mounts them;
// boot 2 changes no byte of the GPT areas.
//
// The media: the `make install` dracut initrd boots from an SD card, a
// USB stick, a SCSI disk and an NVMe disk (what appliances are written
// to), with sprout's default discard; the other three initrds from a
// virtio disk. Each boot's time to root is in the output.
func TestInstalledPath(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the installed-path tier needs root (mount namespaces, overlays)")
	}
	tools := []string{"qemu-system-x86_64", "dracut", "mkinitramfs", "lsinitrd", "lsinitramfs", "unshare",
		"apt-get", "dpkg-deb", "lintian", "make", "mksquashfs", "mkfs.vfat", "mkfs.ext4", "mkfs.xfs", "sfdisk", "busybox", "blkid"}
	if missing := harness.MissingTools(tools...); len(missing) > 0 {
		t.Fatalf("the installed-path tier cannot run: missing %s; run scripts/deps.sh", strings.Join(missing, ", "))
	}
	repo, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	a := &artefacts{repo: repo, dir: filepath.Join(repo, "build", "installed"),
		initrds: map[string]string{}, appliances: map[int]string{}}
	_ = os.RemoveAll(a.dir)
	if err := os.MkdirAll(a.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	step := func(what string, f func() error) {
		t.Helper()
		start := time.Now()
		if err := f(); err != nil {
			t.Fatalf("installed path: %s: %v", what, err)
		}
		t.Logf("installed path: %s (%.1f s)", what, time.Since(start).Seconds())
	}

	var kver, kroot string
	step("fetch Debian's kernel", func() (err error) {
		kver, kroot, err = a.fetchKernel(ctx)
		return err
	})
	var jobs []installedJob
	for _, j := range installedJobs() {
		if installedBoots.MatchString(j.name) {
			jobs = append(jobs, j)
		}
	}
	needs := map[string]bool{}
	for _, j := range jobs {
		needs[strings.Split(j.initrd, "/")[0]] = true
	}
	var deb string
	if needs["deb"] {
		step("make deb", func() error {
			if out, err := exec.CommandContext(ctx, "make", "-s", "-C", repo, "deb").CombinedOutput(); err != nil {
				return fmt.Errorf("make deb: %w\n%s", err, out)
			}
			debs, _ := filepath.Glob(filepath.Join(repo, "build", "sprout_*_amd64.deb"))
			if len(debs) != 1 {
				return fmt.Errorf("want one build/sprout_*_amd64.deb, found %v", debs)
			}
			deb = debs[0]
			return nil
		})
		// Debian's checks on the package: any error or warning fails the
		// tier (each tag the package overrides says why, in the package);
		// informational and pedantic tags are shown.
		step("lintian", func() error {
			out, err := exec.CommandContext(ctx, "lintian", "--fail-on", "error,warning", "--display-info", "--pedantic", deb).CombinedOutput()
			tags := strings.TrimSpace(strings.ReplaceAll(string(out), "running with root privileges is not recommended!\n", ""))
			if err != nil {
				return fmt.Errorf("lintian %s: %w\n%s", filepath.Base(deb), err, tags)
			}
			if tags == "" {
				tags = "no tags"
			}
			t.Logf("lintian %s: %s", filepath.Base(deb), tags)
			return nil
		})
	}
	appliance := filepath.Join(a.dir, "appliance-512.raw")
	step("build the appliance image", func() error {
		_, err := a.script(ctx, "tests/qemu/scripts/build-appliance.sh", "--out", appliance)
		return err
	})
	a.appliances[512] = appliance

	// One install after the other (each in its own throwaway mount
	// namespace; together they would only compete for the cores).
	for _, how := range []string{"make", "deb"} {
		if !needs[how] {
			continue
		}
		dir := filepath.Join(a.dir, how)
		args := []string{"--how", how, "--kernel-root", kroot, "--kver", kver, "--out", dir}
		if how == "deb" {
			args = append(args, "--deb", deb)
		}
		step("install with "+how+", refusals, dracut and mkinitramfs", func() error {
			out, err := a.script(ctx, "tests/install/build-initrds.sh", args...)
			fmt.Print(out)
			return err
		})
		a.initrds[how+"/dracut"] = filepath.Join(dir, "initrd-dracut.img")
		a.initrds[how+"/initramfs-tools"] = filepath.Join(dir, "initrd-initramfs-tools.img")
	}
	if needs["make"] {
		probe := filepath.Join(a.dir, "make", "initrd-dracut-status.img")
		step("add the status recorder to the make install dracut initrd", func() error {
			return appendFixture(ctx, a.initrds["make/dracut"], filepath.Join(repo, "tests/qemu/fixture/status-initrd"), nil, probe)
		})
		a.initrds["make/dracut+status"] = probe
	}

	var mu sync.Mutex
	var summaries []string
	runsDir := filepath.Join(a.dir, "runs")
	t.Run("boots", func(t *testing.T) {
		for i, j := range jobs {
			t.Run(j.name, func(t *testing.T) {
				t.Parallel()
				dir := filepath.Join(runsDir, fmt.Sprintf("%02d-%s", i, j.name))
				o, err := a.runScenario(ctx, j.sc, j.label, dir)
				if err != nil {
					t.Fatalf("%v\n(logs in %s)", err, dir)
				}
				t.Log(o.summary)
				mu.Lock()
				summaries = append(summaries, o.summary)
				mu.Unlock()
				_ = os.Remove(filepath.Join(dir, "disk.raw"))
			})
		}
	})
	fmt.Printf("%s\ninstalled path: %d/%d appliances booted twice and passed\n", strings.Join(summaries, "\n"), len(summaries), len(jobs))
}

var installedBoots = regexp.MustCompile("")

func init() {
	flag.Func("installed-boots", "TestInstalledPath: boot only the jobs whose name matches this regular expression (e.g. media-sd)",
		func(v string) (err error) {
			installedBoots, err = regexp.Compile(v)
			return err
		})
}

// installedJob is one appliance the installed-path tier boots twice.
type installedJob struct {
	name   string // the subtest's name
	initrd string // how/tool: make/dracut, deb/initramfs-tools, …
	sc     scenario
	label  string
}

// installedJobs lists the tier's boots, the longest first (two run at a
// time): the media, then each other initrd on a virtio disk.
func installedJobs() []installedJob {
	var jobs []installedJob
	// What appliances are written to; QEMU 7.2 emulates no eMMC. These
	// are the `make install` dracut initrd's boots (on virtio it boots in
	// the QEMU tier). The NVMe disk is found by PARTUUID, and its initrd
	// records sprout's status while it runs.
	for _, m := range []struct {
		bus, disk, what, cmdline string
		probe                    bool
	}{
		{"sd", "mmcblk0", "an SD card (sdhci-pci + sd-card)", "root=PARTLABEL=root", false},
		{"usb", "sda", "USB mass storage (qemu-xhci + usb-storage)", "root=PARTLABEL=root", false},
		{"scsi", "sda", "a SCSI disk (virtio-scsi + scsi-hd)", "root=PARTLABEL=root", false},
		{"nvme", "nvme0n1", "an NVMe disk, root=PARTUUID=; systemctl status shows sprout's STATUS=",
			"root=PARTUUID=5eed0003-0000-4000-8000-000000000003", true},
	} {
		initrd := "make/dracut"
		if m.probe {
			initrd += "+status"
		}
		jobs = append(jobs, installedJob{name: "media-" + m.bus, initrd: initrd,
			sc: scenario{name: "media-" + m.bus, bus: m.bus, sectorSize: 512, initrd: initrd,
				cmdline: m.cmdline, disk: m.disk, statusProbe: m.probe},
			label: "installed by make install, initrd by the host's dracut --add sprout, on " + m.what})
	}
	for _, how := range []string{"make", "deb"} {
		for _, tool := range []string{"dracut", "initramfs-tools"} {
			if how == "make" && tool == "dracut" {
				continue // the media above
			}
			what := "make install"
			if how == "deb" {
				what = "apt-get install ./sprout_*.deb"
			}
			cmd := "dracut --add sprout"
			if how == "deb" {
				cmd = `dracut, add_dracutmodules+=" sprout "`
			}
			if tool == "initramfs-tools" {
				cmd = "mkinitramfs"
			}
			initrd := how + "/" + tool
			jobs = append(jobs, installedJob{name: how + "-" + tool, initrd: initrd,
				sc: scenario{name: initrd, bus: "virtio", sectorSize: 512, initrd: initrd,
					cmdline: "root=PARTLABEL=root", disk: "vda"},
				label: fmt.Sprintf("installed by %s, initrd by the host's %s", what, cmd)})
		}
	}
	return jobs
}
