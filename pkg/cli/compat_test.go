package cli

import "testing"

// --tpm2-pcrs= defaults to PCR 7 up to 257 and to none from 258 on; a
// value given is kept under every version.
func TestTPM2PCRsDefaultByVersion(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--compat=252"}, "7"},
		{[]string{"--compat=257"}, "7"},
		{[]string{"--compat=258"}, ""},
		{nil, ""},
		{[]string{"--compat=262", "--tpm2-pcrs=7"}, "7"},
		{[]string{"--tpm2-pcrs=", "--compat=252"}, ""},
	} {
		cfg, err := parse(append(c.args, "/dev/null"))
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if cfg.tpm2PCRs != c.want {
			t.Errorf("%q: --tpm2-pcrs= is %q, want %q", c.args, cfg.tpm2PCRs, c.want)
		}
	}
}

func TestCompatFlag(t *testing.T) {
	for _, bad := range []string{"--compat=251", "--compat=263", "--compat=", "--compat=v257", "--compat"} {
		if _, err := parse([]string{bad, "/dev/null"}); err == nil {
			t.Errorf("%s is accepted", bad)
		}
	}
	cfg, err := parse([]string{"--compat=257", "/dev/null"})
	if err != nil || cfg.compat != 257 {
		t.Errorf("--compat=257: %v, %v", cfg, err)
	}
}
