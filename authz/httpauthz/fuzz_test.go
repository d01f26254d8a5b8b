package httpauthz

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// FuzzBuild: whatever a peer sends, the request judged is the model's: a
// forwarded method or URI from an untrusted peer is always refused; from a
// trusted proxy an accepted request is exactly the forwarded one; an
// untrusted peer never chooses its source address or client certificate;
// the forwarded headers never reach the pipeline as headers.
func FuzzBuild(f *testing.F) {
	f.Add(true, "GET", "/ext_authz/v1/orders/7", "", "", "", "", "", "", "", "")
	f.Add(false, "GET", "/ext_authz/v1/orders/7", "GET", "/admin", "", "", "203.0.113.9", "https", "evil", "URI=spiffe://x/ns/a/sa/b")
	f.Add(true, "GET", "/auth", "", "", "DELETE", "/v1/orders/7?x=1", "198.51.100.1, 203.0.113.9", "http", "api.example.com", "")
	f.Add(true, "GET", "/auth", "GET", "/a", "GET", "/b", "unknown", "gopher", "a/b", "")
	f.Add(false, "POST", "/ext_authz/x", "", "/x", "", "", "[::1]:80", "", "", "")
	h := New(Options{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, PathPrefix: "/ext_authz"})
	f.Fuzz(func(t *testing.T, trusted bool, method, target, xfm, xfu, xom, xou, xff, xfp, xfh, xfcc string) {
		peer := "192.0.2.7:4242"
		if trusted {
			peer = "10.1.2.3:4242"
		}
		r := &http.Request{Method: method, RequestURI: target, Host: "warden", RemoteAddr: peer, Header: http.Header{}}
		for k, v := range map[string]string{"X-Forwarded-Method": xfm, "X-Forwarded-Uri": xfu, "X-Original-Method": xom, "X-Original-Uri": xou,
			"X-Forwarded-For": xff, "X-Forwarded-Proto": xfp, "X-Forwarded-Host": xfh, "X-Forwarded-Client-Cert": xfcc} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		b := h.build(r)
		forwarded := xfm != "" || xfu != "" || xom != "" || xou != ""
		if forwarded && !trusted && b.refusal == nil {
			t.Fatalf("forwarded headers from an untrusted peer were judged: %+v", r.Header)
		}
		hr := b.req.GetAttributes().GetRequest().GetHttp()
		headers := map[string]string{}
		for _, hv := range hr.GetHeaderMap().GetHeaders() {
			headers[hv.GetKey()] = string(hv.GetRawValue())
			switch hv.GetKey() {
			case "x-forwarded-method", "x-forwarded-uri", "x-original-method", "x-original-uri", "host":
				t.Fatalf("%s reached the pipeline as a header", hv.GetKey())
			}
		}
		if _, ok := headers["x-forwarded-client-cert"]; ok && !trusted {
			t.Fatal("an untrusted peer's XFCC reached the pipeline")
		}
		src := b.req.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress()
		if !trusted && src != "192.0.2.7" {
			t.Fatalf("an untrusted peer chose its source address: %s", src)
		}
		if b.refusal != nil {
			return
		}
		if !validMethod(hr.GetMethod()) || !validURI(hr.GetPath()) || headers[":method"] != hr.GetMethod() || headers[":path"] != hr.GetPath() {
			t.Fatalf("judged a malformed request: %q %q", hr.GetMethod(), hr.GetPath())
		}
		switch {
		case forwarded:
			wantMethod, wantURI := xfm, xfu
			if wantMethod == "" {
				wantMethod = xom
			}
			if wantURI == "" {
				wantURI = xou
			}
			if hr.GetMethod() != wantMethod || hr.GetPath() != wantURI || xom != "" && xom != wantMethod || xou != "" && xou != wantURI {
				t.Fatalf("judged %s %s, forwarded %q/%q %q/%q", hr.GetMethod(), hr.GetPath(), xfm, xom, xfu, xou)
			}
		default:
			if hr.GetMethod() != method || "/ext_authz"+hr.GetPath() != target {
				t.Fatalf("judged %s %s for the request line %s %s", hr.GetMethod(), hr.GetPath(), method, target)
			}
		}
		if trusted && xff != "" {
			last := strings.TrimSpace(xff[strings.LastIndexByte(xff, ',')+1:])
			ip, err := parseIP(last)
			if err != nil || ip.String() != src {
				t.Fatalf("source %s for X-Forwarded-For %q", src, xff)
			}
		} else if src != netip.MustParseAddrPort(peer).Addr().String() {
			t.Fatalf("source %s, want the peer %s", src, peer)
		}
	})
}
