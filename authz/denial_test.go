package authz

import (
	"slices"
	"testing"

	"github.com/wardenauthz/warden/authz/decisionlog"
)

// TestReasonsAreTheDenialTable: the decision log's list of reasons (what
// filters accept) is policy_allow and every reason of the denial table.
func TestReasonsAreTheDenialTable(t *testing.T) {
	want := []Reason{ReasonPolicyAllow}
	for r := range mapping {
		want = append(want, r)
	}
	slices.Sort(want)
	if got := decisionlog.Reasons; !slices.Equal(got, want) {
		t.Errorf("decisionlog.Reasons = %v, want %v", got, want)
	}
}
