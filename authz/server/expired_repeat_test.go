package server_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/wardenauthz/warden/authz/checkreq"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/testclock"
	"github.com/wardenauthz/warden/internal/testlog"
	"github.com/wardenauthz/warden/internal/testwait"
)

// TestExpiredRefusalRepeats: an expired token sent again (now answered
// from identity's expired cache, without a parse) gets the same response
// and record as the first time — as Bearer and as DPoP — apart from the
// decision id and latency; and once the clock is set back before its exp
// it is judged anew (allowed), never refused from memory.
func TestExpiredRefusalRepeats(t *testing.T) {
	var stdout testlog.Buffer
	clk := testclock.New(fixedNow())
	is := oidctest.New(t)
	e := startOpts(t, is, server.Options{Stdout: &stdout, Now: clk.Now}, func(c *config.Config) {
		c.DecisionLog.Sinks = []config.Sink{{Kind: "stdout"}}
	})
	tok := is.Sign(t, map[string]any{"iss": is.URL, "sub": "alice", "aud": aud, "iat": fixedNow().Add(-2 * time.Hour).Unix(),
		"exp": fixedNow().Add(-time.Hour).Unix(), "jti": "jti-expired", "groups": []string{"staff"}})
	send := func(scheme string) string {
		r := e.check(t, checkreq.HTTP{Method: "GET", URL: "https://api.example.com/v1/orders/42", Headers: []string{"authorization: " + scheme + " " + tok}, Time: clk.Now()})
		return canonicalResponse(t, r)
	}
	for _, scheme := range []string{"Bearer", "DPoP"} {
		first := send(scheme)
		if !strings.Contains(first, "token expired") {
			t.Fatalf("%s: not refused as expired: %s", scheme, first)
		}
		for i := range 3 {
			if again := send(scheme); again != first {
				t.Fatalf("%s, again (%d): %s\nfirst: %s", scheme, i, again, first)
			}
		}
	}
	var recs []string
	testwait.Until(t, 5*time.Second, "records never written", func() bool {
		recs = canonicalRecords(t, stdout.String())
		return len(recs) == 8
	})
	for i, r := range recs {
		if first := recs[i/4*4]; r != first {
			t.Errorf("record %d: %s\nfirst: %s", i, r, first)
		}
	}
	// Set back 90 minutes: the token's exp is ahead again, and it is
	// judged as the full path would (the policies allow staff to read).
	clk.Add(-90 * time.Minute)
	r := e.check(t, checkreq.HTTP{Method: "GET", URL: "https://api.example.com/v1/orders/42", Headers: []string{"authorization: Bearer " + tok}, Time: clk.Now()})
	if got := reasonOf(r); got != "policy_allow" {
		t.Fatalf("clock set back before exp: %s, want policy_allow", got)
	}
}

// canonicalResponse is r as JSON without its decision id.
func canonicalResponse(t *testing.T, r *authv3.CheckResponse) string {
	t.Helper()
	delete(r.GetDynamicMetadata().GetFields(), "decision_id")
	if d := r.GetDeniedResponse(); d != nil {
		var body map[string]any
		if err := json.Unmarshal([]byte(d.GetBody()), &body); err != nil {
			t.Fatalf("body %q: %v", d.GetBody(), err)
		}
		delete(body, "decision_id")
		b, _ := json.Marshal(body)
		d.Body = string(b)
		hs := d.GetHeaders()[:0]
		for _, h := range d.GetHeaders() {
			if h.GetHeader().GetKey() != "x-warden-decision-id" {
				hs = append(hs, h)
			}
		}
		d.Headers = hs
	}
	b, err := protojson.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// canonicalRecords are the JSON records in out without their decision id,
// time, latency and request id.
func canonicalRecords(t *testing.T, out string) []string {
	t.Helper()
	var recs []string
	for l := range strings.Lines(out) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["decision_id"] == nil {
			continue
		}
		delete(m, "decision_id")
		delete(m, "time")
		delete(m, "latency_us")
		if req, ok := m["request"].(map[string]any); ok {
			delete(req, "request_id") // checkreq makes one per request
		}
		b, _ := json.Marshal(m)
		recs = append(recs, string(b))
	}
	return recs
}
