package checkreq

import (
	"testing"
)

func TestBuildLikeEnvoy(t *testing.T) {
	req, err := Build(HTTP{
		Method: "post", URL: "https://api.example.com:8443/v1/a%20b?x=1&y=2",
		Headers:  []string{"Accept: text/csv", "accept: application/json", "Host: other.example", "X-Forwarded-For: 203.0.113.7"},
		Body:     `{"a":1}`,
		SourceIP: "198.51.100.23", PeerPrincipal: "spiffe://cluster.local/ns/a/sa/b",
	})
	if err != nil {
		t.Fatal(err)
	}
	h := req.GetAttributes().GetRequest().GetHttp()
	for k, want := range map[string]string{
		":method": "POST", ":path": "/v1/a%20b?x=1&y=2", ":scheme": "https", ":authority": "other.example",
		"accept": "text/csv,application/json", "x-forwarded-for": "203.0.113.7,198.51.100.23",
		"x-forwarded-proto": "https", "x-envoy-external-address": "198.51.100.23",
		"content-length": "7", "x-envoy-auth-partial-body": "false",
	} {
		if got := h.GetHeaders()[k]; got != want {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}
	if _, ok := h.GetHeaders()["host"]; ok {
		t.Error("Envoy never sends a host key")
	}
	if h.GetHeaders()["x-request-id"] == "" || h.GetId() == "" || h.GetId() == h.GetHeaders()["x-request-id"] {
		t.Error("want an x-request-id header and a separate decimal stream id")
	}
	if h.GetPath() != "/v1/a%20b?x=1&y=2" || h.GetHost() != "other.example" || h.GetBody() != `{"a":1}` || h.GetProtocol() != "HTTP/1.1" {
		t.Errorf("http: %+v", h)
	}
	src := req.GetAttributes().GetSource()
	if src.GetAddress().GetSocketAddress().GetAddress() != "198.51.100.23" || src.GetPrincipal() != "spiffe://cluster.local/ns/a/sa/b" {
		t.Errorf("source: %+v", src)
	}
}

func TestBuildErrors(t *testing.T) {
	for _, h := range []HTTP{{URL: "/relative"}, {URL: "ftp://x/"}, {URL: "http://x/", SourceIP: "nope"}, {URL: "http://x/", Headers: []string{"novalue"}}} {
		if _, err := Build(h); err == nil {
			t.Errorf("%+v: want an error", h)
		}
	}
}
