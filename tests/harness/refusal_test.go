package harness

import (
	"errors"
	"testing"
)

func TestRefusalClasses(t *testing.T) {
	for _, c := range []struct {
		sprout, repart string
		want           RefusalClass
	}{
		{"sprout: /d/10-home.conf:2: invalid section header \"[Partition\"\n", "/d/10-home.conf:1: Assignment outside of section. Ignoring.\n/d/10-home.conf:2: Failed to parse file: Bad message\n", RefusedDefinition},
		{"sprout: /x/disk.img: can't fit requested partitions into available free space (largest free area 32.9M)\n", "Can't fit requested partitions into available free space (984.0K), refusing.\nAutomatically determined minimal disk image size as 91M, current image size is 64M.\n", RefusedFit},
		{"sprout: --empty=bogus: expected refuse, allow, require, force or create\n", "Failed to parse --empty= parameter: bogus\n", RefusedOption},
		{"sprout: /x/disk.img: the disk has no GPT partition table, not repartitioning (see --empty=)\n", "Disk /x/disk.img has no GPT disk label, not repartitioning.\n", RefusedTable},
	} {
		sc, _ := SproutRefusal(c.sprout)
		rc, _ := RepartRefusal(c.repart)
		if sc != c.want || rc != c.want {
			t.Errorf("sprout %q → %q, repart %q → %q; want %q", c.sprout, sc, c.repart, rc, c.want)
		}
	}
	// What neither table knows is no class: a crash's last words, a
	// loader's complaint, an empty stderr.
	for _, s := range []string{"", "Segmentation fault\n", "/usr/bin/systemd-repart: error while loading shared libraries: libsystemd-shared-262.so\n"} {
		if rc, _ := RepartRefusal(s); rc != RefusedUnknown {
			t.Errorf("repart %q → %q, want no class", s, rc)
		}
	}
	if sc, _ := SproutRefusal("panic: runtime error\n"); sc != RefusedUnknown {
		t.Errorf("a panic → %q, want no class", sc)
	}
	if c := SproutErrorClass(errors.New("/dev/sda: can't fit requested partitions into available free space")); c != RefusedFit {
		t.Errorf("planner error → %q", c)
	}
}
