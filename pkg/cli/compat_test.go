package cli

import "testing"

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
