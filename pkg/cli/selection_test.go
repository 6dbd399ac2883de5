package cli

import (
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/pkg/compat"
	"github.com/sprout-initrd/sprout/pkg/fstab"
	"github.com/sprout-initrd/sprout/pkg/parttype"
)

func TestSelectionAndGenerateFlags(t *testing.T) {
	home, _ := parttype.Lookup("home")
	v, _ := parttype.Lookup("var")
	c, err := parse([]string{"--compat=262", "--include-partitions=home", "--include-partitions=var", "--defer-partitions=4d21b016-b534-45c2-a9fb-5c16e091fd2d",
		"--defer-partitions-empty=yes", "--defer-partitions-factory-reset=1", "--generate-fstab=/etc/fstab",
		"--generate-crypttab", "/etc/crypttab", "--append-fstab=auto", "/dev/vda"})
	if err != nil {
		t.Fatal(err)
	}
	s := c.selection
	if len(s.Include) != 2 || s.Include[0] != home || s.Include[1] != v || len(s.Defer) != 1 || s.Defer[0] != v ||
		!s.DeferEmpty || !s.DeferFactoryReset || c.generateFstab != "/etc/fstab" || c.generateCrypttab != "/etc/crypttab" || c.appendFstab != fstab.AppendAuto {
		t.Errorf("parsed %+v", c)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--include-partitions=home", "--exclude-partitions=var"}, "cannot be combined"},
		{[]string{"--exclude-partitions=var", "--include-partitions=home"}, "cannot be combined"},
		{[]string{"--include-partitions=bogus"}, `"bogus" is not a partition type`},
		{[]string{"--defer-partitions=home,"}, `"" is not a partition type`},
		{[]string{"--defer-partitions-empty=maybe"}, "not a boolean"},
		{[]string{"--append-fstab=append"}, "expected no, auto or replace"},
	} {
		if _, err := parse(append([]string{"--compat=262"}, append(c.args, "/dev/vda")...)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}

// Under --compat= a flag newer than the version followed is refused with
// the version that added it.
func TestFlagsNewerThanCompat(t *testing.T) {
	for _, c := range []struct {
		flag   string
		compat compat.Version
		want   string
	}{
		{"--generate-fstab=/etc/fstab", 255, "--generate-fstab= needs systemd-repart 256 or later, but --compat=255"},
		{"--generate-fstab=/etc/fstab", 256, ""},
		{"--append-fstab=auto", 257, "--append-fstab= needs systemd-repart 258"},
		{"--defer-partitions=home", 252, "--defer-partitions= needs systemd-repart 253"},
		{"--defer-partitions-empty=yes", 258, "needs systemd-repart 259"},
		{"--exclude-partitions=home", 253, ""},
	} {
		cfg, err := parse([]string{"--compat=262", c.flag, "/dev/vda"})
		if err != nil {
			t.Fatal(err)
		}
		cfg.compat = c.compat
		err = cfg.checkCompat()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s under %d: %v, want %q", c.flag, c.compat, err, c.want)
		}
	}
}
