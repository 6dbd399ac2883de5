package apply_test

import (
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/pkg/plan"
)

// strangeStep is a Step kind the executor was not written for.
type strangeStep struct{}

func (strangeStep) Describe() string { return "do something new" }

// A plan with a step the executor does not know, or an encrypted file
// system without its volume's step, is refused before anything is
// written.
func TestRunRefusesStepsItDoesNotKnowBeforeWriting(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(p *plan.Plan)
		want string
	}{
		{"unknown step", func(p *plan.Plan) {
			p.Steps = append(p.Steps, strangeStep{})
		}, "a step this executor does not know (apply_test.strangeStep: do something new)"},
		{"encrypted without its volume", func(p *plan.Plan) {
			for i, s := range p.Steps {
				if f, ok := s.(plan.FormatPartition); ok {
					f.Encrypted = true
					p.Steps[i] = f
					return
				}
			}
			t.Fatal("the plan formats nothing")
		}, "inside a LUKS2 volume the plan does not make"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := seedImage(t)
			p, _ := planFor(t, path, definitions(t))
			c.edit(p)
			r, err := run(t, path, p, -1)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "nothing was written") {
				t.Fatalf("Run = %v, want a refusal naming %q", err, c.want)
			}
			// The recorder sees every write, zeroing and discard.
			for _, e := range r.events {
				if e.kind != "sync" {
					t.Errorf("%s before the refusal", e)
				}
			}
		})
	}
}
