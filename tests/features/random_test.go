package features

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/tests/harness"
)

// Random cases draw the keys and flags of this tier over a few bases:
// MountPoint= (quoted, escaped, with and without options),
// EncryptedVolume= on partitions that exist, Format=empty, VolumeLabel=
// and image-building keys on partitions that exist, Subvolumes= on a new
// btrfs, SupplementFor=, and the selection and generate flags. The layouts
// stay where 252's and 262's allocators agree (fixed sizes of at least
// 64 MiB, one partition that takes the rest, no new ESP): what is drawn is
// the new keys, not the sizes (tests/differential draws those).
//
// SPROUT_FEATURES_RANDOM sets the number of cases (default 8),
// SPROUT_FEATURES_SEED the master seed (default fixed).

const (
	envRandomCases = "SPROUT_FEATURES_RANDOM"
	envRandomSeed  = "SPROUT_FEATURES_SEED"
)

// randomBase is an image the random cases start from.
type randomBase struct {
	name   string
	script string // sfdisk
	// existing are the definitions matching its partitions, each a list
	// of alternatives (one is drawn); "%s" gets the drawn keys.
	existing []string
}

var randomBases = []randomBase{
	{name: "seed", script: `label: gpt
label-id: 5EED0000-0000-4000-8000-000000000000
first-lba: 2048
start=2048, size=409600, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=5EED0001-0000-4000-8000-000000000001, name="boot"
start=411648, size=704512, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=5EED0002-0000-4000-8000-000000000002, name="nix-store", attrs="GUID:60"
`, existing: []string{
		"Type=esp\nLabel=boot\nFormat=vfat\nSizeMinBytes=200M\nSizeMaxBytes=200M\n%s",
		"Type=linux-generic\nLabel=nix-store\nFormat=squashfs\nReadOnly=yes\nSizeMaxBytes=344M\n%s",
	}},
	{name: "root-var", script: `label: gpt
label-id: 0A0B0000-0000-4000-8000-000000000000
first-lba: 2048
start=2048, size=204800, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=0A0B0001-0000-4000-8000-000000000001, name="esp"
start=206848, size=409600, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=0A0B0002-0000-4000-8000-000000000002, name="root-x86-64"
start=616448, size=204800, type=4D21B016-B534-45C2-A9FB-5C16E091FD2D, uuid=0A0B0003-0000-4000-8000-000000000003, name="var"
`, existing: []string{
		"Type=esp\nFormat=vfat\nSizeMaxBytes=100M\n%s",
		"Type=root\nFormat=ext4\nSizeMaxBytes=200M\n%s",
		"Type=var\nFormat=ext4\nEncrypt=key-file\nSizeMaxBytes=100M\n%s",
	}},
}

// newTypes are the types random new partitions get (no ESP or XBOOTLDR:
// their minimum differs between 252 and 262).
var newTypes = []string{"home", "srv", "tmp", "usr", "linux-generic", "swap", "root-secondary"}

func TestRandom(t *testing.T) {
	s := begin(t)
	n, err := harness.EnvInt(envRandomCases, 8)
	if err != nil {
		t.Fatal(err)
	}
	master := uint64(20261207)
	if v := os.Getenv(envRandomSeed); v != "" {
		if master, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s: %v", envRandomSeed, err)
		}
	}
	t.Logf("%s=%d %s=%d", envRandomCases, n, envRandomSeed, master)
	t.Run("group", func(t *testing.T) {
		for i := range n {
			seed := master*1000003 + uint64(i)
			t.Run(fmt.Sprintf("case%02d-%d", i, seed), func(t *testing.T) {
				t.Parallel()
				work := t.TempDir()
				sc, scDir, err := randomScenario(seed, work)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("definitions and flags (%s):\n%s", scDir, describe(scDir, sc))
				s.run(t, scDir, sc)
			})
		}
	})
	line := fmt.Sprintf("features, random: %d cases, %d steps, %d equal, %d failed, %d not compared (the oracle aborted: a merged SupplementFor= target it populates)",
		n, s.steps, s.equal, s.failed, s.notCompare) + " — " + s.oracle.note
	t.Log(line)
	fmt.Println(line)
	if path := os.Getenv("SPROUT_DIFF_SUMMARY"); path != "" {
		if err := harness.AppendLine(path, line); err != nil {
			t.Error(err)
		}
	}
}

func describe(dir string, sc *scenario) string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(dir, "defs", "*.conf"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "--- %s\n%s", filepath.Base(f), data)
	}
	for _, st := range sc.Steps {
		fmt.Fprintf(&b, "flags %q\n", st.Args)
	}
	return b.String()
}

// randomScenario writes a scenario directory (defs/, base.sfdisk) for
// seed and returns it.
func randomScenario(seed uint64, work string) (*scenario, string, error) {
	r := rand.New(rand.NewPCG(seed, seed^0xfea7))
	dir := filepath.Join(work, "scenario")
	if err := os.MkdirAll(filepath.Join(dir, "defs"), 0o755); err != nil {
		return nil, "", err
	}
	base := randomBases[r.IntN(len(randomBases))]
	if err := os.WriteFile(filepath.Join(dir, "base.sfdisk"), []byte(base.script), 0o644); err != nil {
		return nil, "", err
	}
	var names []string
	write := func(name, body string) error {
		names = append(names, strings.TrimSuffix(name, ".conf"))
		return os.WriteFile(filepath.Join(dir, "defs", name), []byte("[Partition]\n"+body), 0o644)
	}
	for i, e := range base.existing {
		var extra []string
		if r.IntN(2) == 0 {
			extra = append(extra, mountPoint(r))
		}
		if r.IntN(3) == 0 {
			extra = append(extra, imageKeys(r)...)
		}
		if strings.Contains(e, "Encrypt=") && r.IntN(2) == 0 {
			extra = append(extra, "EncryptedVolume="+[]string{"var", "var::discard", ":/etc/var.key", "v:-:tpm2-device=auto"}[r.IntN(4)])
		}
		body := fmt.Sprintf(e, strings.Join(extra, ""))
		if err := write(fmt.Sprintf("%02d-existing.conf", i), body); err != nil {
			return nil, "", err
		}
	}
	var newDefs []string
	for i := range 1 + r.IntN(3) {
		typ := newTypes[r.IntN(len(newTypes))]
		size := []string{"64M", "100M", "256M"}[r.IntN(3)]
		var b strings.Builder
		fmt.Fprintf(&b, "Type=%s\nSizeMinBytes=%s\nSizeMaxBytes=%s\n", typ, size, size)
		switch {
		case typ == "swap":
			b.WriteString("Format=swap\n")
		case r.IntN(4) == 0:
			b.WriteString("Format=empty\n")
			if r.IntN(2) == 0 {
				b.WriteString("Label=" + []string{"_empty", "spare", ""}[r.IntN(3)] + "\n")
			}
		default:
			b.WriteString("Format=" + []string{"ext4", "vfat", "ext2"}[r.IntN(3)] + "\n")
		}
		if r.IntN(2) == 0 {
			b.WriteString(mountPoint(r))
		}
		if r.IntN(4) == 0 {
			// Keys that only modify content: no effect without content.
			b.WriteString([]string{"Compression=zstd\n", "ExcludeFiles=/var/cache\n", "SplitName=-\n", "VerityDataBlockSizeBytes=4096\n"}[r.IntN(4)])
		}
		if r.IntN(5) == 0 {
			b.WriteString("FactoryReset=yes\n")
		}
		name := fmt.Sprintf("%02d-new-%s.conf", 50+i, typ)
		newDefs = append(newDefs, typ)
		if err := write(name, b.String()); err != nil {
			return nil, "", err
		}
	}
	if r.IntN(4) == 0 {
		// A supplement for the last new definition, merged into it.
		target := names[len(names)-1]
		if err := write("80-supplement.conf", fmt.Sprintf("Type=%s\nSizeMinBytes=64M\nWeight=%d\nSupplementFor=%s\n", "srv", 100+r.IntN(2000), target)); err != nil {
			return nil, "", err
		}
	}
	// The partition that takes what is left (so both allocators agree).
	if err := write("99-rest.conf", "Type=linux-generic\nLabel=rest\n"+mountPointOr(r, "")); err != nil {
		return nil, "", err
	}

	args := []string{"--generate-fstab=/etc/fstab"}
	if r.IntN(2) == 0 {
		args = append(args, "--generate-crypttab=/etc/crypttab")
	}
	if r.IntN(3) == 0 {
		args = append(args, "--append-fstab="+[]string{"auto", "replace"}[r.IntN(2)])
	}
	switch r.IntN(6) {
	case 0:
		args = append(args, "--defer-partitions="+newDefs[0])
	case 1:
		// Not the type of the partition that takes the rest: without it
		// the leftover lands where 252 and 262 put it differently.
		if newDefs[0] != "linux-generic" {
			args = append(args, "--exclude-partitions="+newDefs[0])
		}
	case 2:
		args = append(args, "--defer-partitions-empty=yes")
	case 3:
		args = append(args, "--defer-partitions-factory-reset=yes")
	}
	st := step{Name: "first-boot", Definitions: "defs", Root: true, Args: args, Files: []string{"etc/fstab", "etc/crypttab"}}
	if strings.Contains(strings.Join(args, " "), "--append-fstab") && r.IntN(2) == 0 {
		st.Existing = map[string]string{"etc/fstab": "fstab.in"}
		if err := os.WriteFile(filepath.Join(dir, "fstab.in"), []byte("# by hand\n/dev/sda9 /data ext4 defaults 0 2\n"), 0o644); err != nil {
			return nil, "", err
		}
	}
	again := st
	again.Name, again.KeepRoot, again.Existing = "second-boot", true, nil
	if !strings.Contains(strings.Join(args, " "), "--append-fstab") {
		again.Args = append(append([]string(nil), args...), "--append-fstab=auto")
		again.Args = slicesWithout(again.Args, "--generate-crypttab=/etc/crypttab")
		again.Files = []string{"etc/fstab"}
	} else if strings.Contains(strings.Join(args, " "), "--generate-crypttab") {
		again.Args = slicesWithout(args, "--generate-crypttab=/etc/crypttab")
		again.Files = []string{"etc/fstab"}
	}
	sc := &scenario{Description: fmt.Sprintf("random case %d on %s", seed, base.name), Since: 259,
		Size: []string{"3G", "6G"}[r.IntN(2)], Table: "base.sfdisk", Seed: fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64()), Steps: []step{st, again}}
	return sc, dir, nil
}

func slicesWithout(s []string, drop string) []string {
	var out []string
	for _, x := range s {
		if x != drop {
			out = append(out, x)
		}
	}
	return out
}

func mountPoint(r *rand.Rand) string { return mountPointOr(r, "/mnt/x") }

// mountPointOr draws a MountPoint= line ("" from empty when drawn).
func mountPointOr(r *rand.Rand, empty string) string {
	if empty == "" && r.IntN(2) == 0 {
		return ""
	}
	path := []string{"/data", "/srv/www", "//var//lib/", "/a/./b", `"/odd:name"`, "/opt/x"}[r.IntN(6)]
	switch r.IntN(5) {
	case 0:
		return "MountPoint=" + path + "\n"
	case 1:
		return "MountPoint=" + path + ":\n"
	case 2:
		return "MountPoint=" + path + ":" + []string{"noatime", "x-initrd.mount", `"ro,nofail"`, `a\x2cb`, "subvol=@x"}[r.IntN(5)] + "\n"
	case 3:
		return "MountPoint=" + path + "\nMountPoint=/second:nofail\n"
	}
	return "MountPoint=" + path + "::\n"
}

// imageKeys draws image-building keys for a partition that exists.
func imageKeys(r *rand.Rand) []string {
	all := []string{"CopyFiles=/usr:/\n", "MakeDirectories=/a /b\n", "MakeSymlinks=/x:/y\n", "ExcludeFilesTarget=/tmp\n",
		"Compression=zstd\nCompressionLevel=3\n", "SplitName=part\n", "CopyFiles=/etc\nCopyFiles=\n"}
	var out []string
	for range 1 + r.IntN(3) {
		out = append(out, all[r.IntN(len(all))])
	}
	return out
}
