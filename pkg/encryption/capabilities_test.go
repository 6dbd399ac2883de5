package encryption

import (
	"strings"
	"testing"
)

func TestParsePCRs(t *testing.T) {
	for _, c := range []struct {
		in    string
		names bool
		want  string
	}{
		{"", false, ""}, {"7", false, "7"}, {"1+7", false, "1+7"}, {"1,7", false, "1+7"}, {"0+23", false, "0+23"},
		{"7+1+7", false, "1+7"}, {"kernel-boot", true, "11"}, {"secure-boot-policy,4", true, "4+7"},
	} {
		if got, err := ParsePCRs(c.in, c.names); err != nil || got != c.want {
			t.Errorf("ParsePCRs(%q, %v) = %q, %v; want %q", c.in, c.names, got, err, c.want)
		}
	}
	for _, c := range []struct {
		in    string
		names bool
		want  string
	}{
		{"24", true, "not a PCR number"}, {"-1", true, "not a PCR number"}, {"x", true, "neither"}, {"+", true, "names no PCR"},
		{"1++x", true, "neither"}, {"sha256:7", true, "not PCR values"}, {"7:sha256=00", true, "not PCR values"},
		// Names came with 254: under 252 they are refused, saying so.
		{"secure-boot-policy", false, "added in systemd 254"},
	} {
		if got, err := ParsePCRs(c.in, c.names); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParsePCRs(%q, %v) = %q, %v; want an error containing %q", c.in, c.names, got, err, c.want)
		}
	}
}

func TestCheck(t *testing.T) {
	all := Capabilities{Probed: true, Cryptsetup: true, Cryptenroll: true, Settings: Settings{TPM2Device: "/dev/tpmrm0"}}
	cases := []struct {
		name string
		c    func(c *Capabilities)
		mode Mode
		want string // "" no error
	}{
		{"all there", func(*Capabilities) {}, KeyFileTPM2, ""},
		{"not probed", func(c *Capabilities) { *c = Capabilities{} }, TPM2, ""},
		{"off needs nothing", func(c *Capabilities) { c.Cryptsetup = false }, Off, ""},
		{"no cryptsetup", func(c *Capabilities) { c.Cryptsetup = false }, KeyFile, "cryptsetup is needed"},
		{"key-file needs no TPM2", func(c *Capabilities) { c.TPM2Device, c.Cryptenroll = "", false }, KeyFile, ""},
		{"no cryptenroll", func(c *Capabilities) { c.Cryptenroll = false }, TPM2, "systemd-cryptenroll is needed"},
		{"no TPM2", func(c *Capabilities) { c.TPM2Device, c.NoTPM2 = "", "none here" }, KeyFileTPM2, "needs a TPM2 device: none here"},
	}
	for _, tc := range cases {
		c := all
		tc.c(&c)
		err := c.Check(tc.mode)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Check(%s) = %v, want %q", tc.name, tc.mode, err, tc.want)
		}
	}
}
