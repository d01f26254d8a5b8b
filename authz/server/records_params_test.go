package server_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/wardenauthz/warden/authz/checkreq"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/testlog"
	adminv1 "github.com/wardenauthz/warden/proto/warden/admin/v1"
)

// TestRecordsRedactParamsInHeaders (session 12, F4 and F5), over gRPC
// into a replayable stdout sink and the admin API's ring:
//
//   - a credential-named parameter in the query of a URL or path carried
//     by a header of any name (Envoy's x-envoy-original-path after a
//     rewrite, an OAuth referer's code, an escaped name, a query escaped
//     inside another parameter), URL userinfo in a header, and a Host with
//     userinfo (answered 400) leave no trace in either;
//   - a header value that is not UTF-8 (header_map raw_value, as Envoy's
//     encode_raw_headers sends it) no longer makes the record lose its
//     Cedar section: the request stays replayable.
func TestRecordsRedactParamsInHeaders(t *testing.T) {
	var stdout testlog.Buffer
	is := oidctest.New(t)
	e := startOpts(t, is, server.Options{Stdout: &stdout, FullContext: true}, func(c *config.Config) {
		c.DecisionLog.Sinks = []config.Sink{{Kind: "stdout"}}
		c.DecisionLog.Replayable = true
		c.Admin.TokenFile = adminTokens(t)
	})
	good := e.token(t, "alice", "staff")
	const uuid = "3f2b8c1e-9d4a-4b7e-8f6a-1c2d3e4f5a6b"
	mark := func(p string) string { return "Q7mark" + p + "x" }
	places := []string{"query", "orig", "referer", "escname", "nested", "userinfo", "host", "hostuser"}
	secrets := make([]string, len(places))
	for i, p := range places {
		secrets[i] = mark(p)
	}
	testlog.Secret(t, secrets...)
	e.check(t, checkreq.HTTP{URL: "https://api.example.com/v1/orders/" + uuid + "?access_token=" + mark("query"),
		Headers: []string{"authorization: Bearer " + good, "x-request-id: leak-headers",
			"x-envoy-original-path: /api/v1/orders/" + uuid + "?access_token=" + mark("orig"),
			"referer: https://app.example/cb?state=xyz&code=" + mark("referer"),
			"x-original-url: https://app.example/x?acc%65ss_tok%65n=" + mark("escname"),
			"x-forwarded-uri: /login?next=%2Fcb%3Fstate%3D1%26code%3D" + mark("nested") + "%26x%3D2",
			"location: https://svc:" + mark("userinfo") + "@api.example/v1"}})
	if code, _ := denied(t, e.check(t, checkreq.HTTP{URL: "https://api.example.com/v1/orders/" + uuid,
		Headers: []string{"host: user:" + mark("host") + "@api.example.com", "x-request-id: leak-host"}})); code != 400 {
		t.Errorf("a Host with userinfo: %d, want 400", code)
	}
	// A user name alone (an API key as the user, as some APIs take it).
	if code, _ := denied(t, e.check(t, checkreq.HTTP{URL: "https://api.example.com/v1/orders/" + uuid,
		Headers: []string{"host: " + mark("hostuser") + "@api.example.com", "x-request-id: leak-hostuser"}})); code != 400 {
		t.Errorf("a Host with a user name: %d, want 400", code)
	}
	// A header that is not UTF-8, sent as header_map raw values.
	req, err := checkreq.Build(checkreq.HTTP{URL: "https://api.example.com/v1/orders/" + uuid,
		Headers: []string{"authorization: Bearer " + good, "x-request-id: raw-utf8"}})
	if err != nil {
		t.Fatal(err)
	}
	h := req.GetAttributes().GetRequest().GetHttp()
	hm := &corev3.HeaderMap{}
	for k, v := range h.GetHeaders() {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
	}
	hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: "x-v1", RawValue: []byte("\xffabc\xfe")})
	h.Headers, h.HeaderMap = nil, hm
	if _, err := e.client.Check(context.Background(), req); err != nil {
		t.Fatal(err)
	}

	out, queried, resp := recordsOut(t, e, &stdout, 3)
	for name, text := range map[string]string{"stdout sink": out, "QueryDecisions": queried} {
		for i, s := range secrets {
			if strings.Contains(strings.ToLower(text), strings.ToLower(s)) { // a host is lowercased
				t.Errorf("%s holds the %s secret", name, places[i])
			}
		}
	}
	// Every record that reached the policies keeps its Cedar section.
	records := map[string]map[string]any{}
	for line := range strings.Lines(out) {
		var r map[string]any
		if json.Unmarshal([]byte(line), &r) != nil || r["decision_id"] == nil {
			continue
		}
		if q, ok := r["request"].(map[string]any); ok {
			if id, ok := q["request_id"].(string); ok {
				records[id] = r
			}
		}
	}
	for _, id := range []string{"leak-headers", "raw-utf8"} {
		r := records[id]
		if r == nil || r["cedar"] == nil || r["truncated"] != nil {
			t.Errorf("record %s: want its Cedar section, not truncated: %v", id, r)
		}
	}
	if r := records["leak-host"]; r == nil || r["request"].(map[string]any)["host"] != "[REDACTED]@api.example.com" {
		t.Errorf("record leak-host: %v", r)
	}
	if !strings.Contains(out, `"x-v1":"\ufffdabc\ufffd"`) && !strings.Contains(out, "\"x-v1\":\"\uFFFDabc\uFFFD\"") {
		t.Errorf("x-v1 not kept with its invalid bytes replaced:\n%s", out)
	}
	var ring []*adminv1.Decision
	for _, d := range resp.GetDecisions() {
		if d.GetRequest().GetRequestId() == "raw-utf8" {
			ring = append(ring, d)
		}
	}
	if len(ring) != 1 || ring[0].GetCedarJson() == "" {
		t.Errorf("QueryDecisions: the raw-utf8 record without its Cedar section: %v", ring)
	}
}
