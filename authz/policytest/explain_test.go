package policytest_test

import (
	"context"
	"testing"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/policytest"
)

// TestQuickStartExplanations: with Runner.Explain, every quick start test
// (both forms) that reaches the policies is explained, and each
// explanation's conclusion is the decision the pipeline made (a
// disagreement would fail the test as "internal").
func TestQuickStartExplanations(t *testing.T) {
	cfg, err := config.LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	r, err := policytest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Explain = true
	files, err := policytest.Files([]string{"../../examples/quickstart/tests"})
	if err != nil {
		t.Fatal(err)
	}
	explained := 0
	for _, f := range files {
		outs, err := r.RunFile(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range outs {
			if !o.Passed() {
				t.Errorf("%s:%d %s: %v", o.File, o.Line, o.Name, o.Failures)
			}
			if o.Explanation != nil {
				explained++
				if o.Explanation.Rule == "" {
					t.Errorf("%s:%d: no rule", o.File, o.Line)
				}
			}
		}
	}
	if explained < 15 {
		t.Errorf("%d of the quick start's 20 tests explained", explained)
	}
}
