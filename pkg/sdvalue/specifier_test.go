package sdvalue

import (
	"testing"
)

func TestLazySpecifiersReadOnlyForALabelWithASpecifier(t *testing.T) {
	reads := 0
	sp := LazySpecifiers(func() Specifiers {
		reads++
		return Specifiers{Values: map[byte]string{'o': "debian"}}
	})
	if got, err := sp.Expand("home"); err != nil || got != "home" || reads != 0 {
		t.Fatalf("Expand(home) = %q, %v after %d reads; want home, no error, no read", got, err, reads)
	}
	for range 2 {
		if got, err := sp.Expand("%o-home"); err != nil || got != "debian-home" {
			t.Fatalf("Expand(%%o-home) = %q, %v", got, err)
		}
	}
	if reads != 1 {
		t.Errorf("read the system %d times, want once", reads)
	}
	if _, err := sp.Expand("%z"); err == nil || reads != 1 {
		t.Errorf("an unknown specifier: err %v after %d reads; want an error and no new read", err, reads)
	}
}
