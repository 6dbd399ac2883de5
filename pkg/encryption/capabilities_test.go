package encryption

import (
	"strings"
	"testing"
)

func TestParsePCRs(t *testing.T) {
	for in, want := range map[string]string{"": "", "7": "7", "1+7": "1+7", "1,7": "1+7", "0+23": "0+23"} {
		if got, err := ParsePCRs(in); err != nil || got != want {
			t.Errorf("ParsePCRs(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"24", "-1", "x", "+", "1++x", "sha256:7"} {
		if got, err := ParsePCRs(in); err == nil {
			t.Errorf("ParsePCRs(%q) = %q, want an error", in, got)
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
