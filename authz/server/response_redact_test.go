package server_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/wardenauthz/warden/authz/checkreq"
)

// TestResponseRedactsCedarErrors: a Cedar error quotes the value it failed
// on; when that value is a credential (a JWT in a header a policy parses
// as an IP), the CheckResponse (dynamic_metadata.errors, the problem+json
// body, every header) carries it redacted, as the decision record does,
// through a real gRPC Check. The policy and the error stay named.
func TestResponseRedactsCedarErrors(t *testing.T) {
	const src = `@id("all") permit(principal, action, resource);
@id("loop") forbid(principal, action, resource) when { context.request.headers has "x-i" && ip(context.request.headers["x-i"]).isLoopback() };`
	e := start(t, policyDir(t, src))
	tok := e.token(t, "alice", "staff")
	jwt := e.token(t, "bob", "staff") // a credential that is not this request's
	sig := jwt[strings.LastIndexByte(jwt, '.')+1:]
	for _, withToken := range []bool{false, true} {
		h := checkreq.HTTP{Method: "GET", URL: "http://api.example.com/v1/orders", Headers: []string{"x-i: " + jwt}}
		if withToken {
			h.Headers = append(h.Headers, "authorization: Bearer "+tok)
		}
		resp := e.check(t, h)
		status, reason, errs := outcome(t, e, h)
		if status != 403 || reason != "policy_error" || len(errs) != 1 || !strings.HasPrefix(errs[0], "loop: ") || !strings.Contains(errs[0], "[REDACTED]") {
			t.Errorf("token %v: got %d %s %q, want 403 policy_error [loop: ... [REDACTED]]", withToken, status, reason, errs)
		}
		b, err := protojson.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{jwt, sig, jwt[:20]} {
			if strings.Contains(string(b), s) {
				t.Errorf("token %v: the CheckResponse carries the credential: %s", withToken, b)
				break
			}
		}
	}
}
