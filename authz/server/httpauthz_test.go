package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/wardenauthz/warden/authz"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/decisionlog"
)

// The proxies that send Warden an HTTP authorization request.
const (
	styleEnvoy   = "envoy"   // Envoy's HTTP service: the client's request line, path_prefix prepended
	styleTraefik = "traefik" // X-Forwarded-Method, -Uri, -Host, -Proto, -For
	styleNginx   = "nginx"   // X-Original-Method, -URI (+ X-Forwarded-Host, -Proto, -For)
)

// httpAuthz starts a Warden with the HTTP authorization listener, trusting
// the given proxies (the tests' client is 127.0.0.1).
func httpAuthz(t *testing.T, trusted []string, mutate ...func(*config.Config)) *env {
	t.Helper()
	return start(t, append([]func(*config.Config){func(c *config.Config) {
		c.Server.HTTPAuthzAddr = "127.0.0.1:0"
		c.Server.HTTPAuthz.PathPrefix = "/ext_authz"
		c.Server.HTTPAuthz.TrustedProxies = trusted
		c.Server.HTTPAuthz.Trusted = nil
		for _, p := range trusted {
			c.Server.HTTPAuthz.Trusted = append(c.Server.HTTPAuthz.Trusted, mustPrefix(t, p))
		}
	}}, mutate...)...)
}

func mustPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// asHTTP is the HTTP request a proxy of style sends Warden for the client
// request req describes: its method, path, authority and headers, with
// X-Forwarded-For ending in the TCP peer (as a proxy appends it).
func asHTTP(t *testing.T, base string, req *authv3.CheckRequest, style string) *http.Request {
	t.Helper()
	h := req.GetAttributes().GetRequest().GetHttp()
	type kv struct{ k, v string }
	var hs []kv
	if hm := h.GetHeaderMap(); hm != nil && len(hm.GetHeaders()) > 0 {
		for _, x := range hm.GetHeaders() {
			v := string(x.GetRawValue())
			if v == "" {
				v = x.GetValue()
			}
			hs = append(hs, kv{x.GetKey(), v})
		}
	} else {
		for k, v := range h.GetHeaders() {
			hs = append(hs, kv{k, v})
		}
	}
	get := func(name string) string {
		for _, x := range hs {
			if x.k == name {
				return x.v
			}
		}
		return ""
	}
	method := firstOf(h.GetMethod(), get(":method"))
	path := firstOf(h.GetPath(), get(":path"))
	host := firstOf(h.GetHost(), get(":authority"))
	scheme := firstOf(h.GetScheme(), get(":scheme"))
	src := req.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress()
	xff := get("x-forwarded-for")
	if src != "" {
		if parts := strings.Split(xff, ","); strings.TrimSpace(parts[len(parts)-1]) != src {
			if xff != "" {
				xff += ","
			}
			xff += src
		}
	}
	var r *http.Request
	var err error
	body := firstOf(h.GetBody(), string(h.GetRawBody()))
	switch style {
	case styleEnvoy:
		r, err = http.NewRequest(method, base+"/ext_authz"+path, strings.NewReader(body))
		if host != "" {
			r.Host = host
		}
	default:
		r, err = http.NewRequest("GET", base+"/auth", nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range hs {
		if strings.HasPrefix(x.k, ":") || x.k == "x-forwarded-for" || x.k == "content-length" || x.k == "host" {
			continue
		}
		r.Header.Add(x.k, x.v)
	}
	if xff != "" {
		r.Header.Set("X-Forwarded-For", xff)
	}
	// The mTLS peer reaches an HTTP service only in XFCC.
	if p := req.GetAttributes().GetSource().GetPrincipal(); p != "" && get("x-forwarded-client-cert") == "" {
		r.Header.Set("X-Forwarded-Client-Cert", "URI="+p)
	}
	r.Header.Set("X-Forwarded-Proto", scheme)
	switch style {
	case styleTraefik:
		r.Header.Set("X-Forwarded-Method", method)
		r.Header.Set("X-Forwarded-Uri", path)
		r.Header.Set("X-Forwarded-Host", host)
	case styleNginx:
		r.Header.Set("X-Original-Method", method)
		r.Header.Set("X-Original-URI", path)
		r.Header.Set("X-Forwarded-Host", host)
	}
	if host == "" {
		r.Header.Del("X-Forwarded-Host")
	}
	return r
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

var remaining = regexp.MustCompile(`;r=\d+`)

// answer is what a proxy makes of a response, gRPC or HTTP, with the
// decision id left out.
type answer struct {
	Status   int
	Problem  map[string]any
	Headers  map[string]string // identity, challenge, retry and rate-limit headers
	Removed  string            // request headers the proxy removes
	Decision string
}

// normal leaves out what differs between two Checks of one request: the
// rate limit spent.
func (a answer) normal() answer {
	if v, ok := a.Headers["ratelimit"]; ok {
		a.Headers["ratelimit"] = remaining.ReplaceAllString(v, ";r=N")
	}
	return a
}

var answerHeaders = []string{"x-warden-principal", "x-warden-subject", "x-warden-issuer", "x-warden-groups", "x-warden-scopes", "x-warden-workload",
	"www-authenticate", "retry-after", "ratelimit", "ratelimit-policy", "content-type", "cache-control"}

func grpcAnswer(t *testing.T, resp *authv3.CheckResponse) answer {
	t.Helper()
	a := answer{Status: 200, Headers: map[string]string{}}
	keep := func(k, v string) {
		for _, n := range answerHeaders {
			if n == k {
				a.Headers[k] = v
			}
		}
	}
	if ok := resp.GetOkResponse(); ok != nil {
		for _, h := range append(ok.GetHeaders(), ok.GetResponseHeadersToAdd()...) {
			keep(h.GetHeader().GetKey(), h.GetHeader().GetValue())
		}
		a.Headers["cache-control"] = "no-store" // HTTP allows are never cached
		a.Removed = strings.Join(ok.GetHeadersToRemove(), ",")
	}
	if d := resp.GetDeniedResponse(); d != nil {
		a.Status = int(d.GetStatus().GetCode())
		for _, h := range d.GetHeaders() {
			keep(h.GetHeader().GetKey(), h.GetHeader().GetValue())
		}
		a.Problem = problemOf(t, d.GetBody())
	}
	a.Decision = resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue()
	return a
}

func problemOf(t *testing.T, body string) map[string]any {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("problem body %q: %v", body, err)
	}
	delete(p, "decision_id")
	return p
}

// httpAnswer reads Warden's HTTP answer as the proxy of style would: nginx
// gets 401 or 403 with the real status and body in headers.
func httpAnswer(t *testing.T, resp *http.Response, body []byte, style string) answer {
	t.Helper()
	a := answer{Status: resp.StatusCode, Headers: map[string]string{}}
	for _, n := range answerHeaders {
		if v := resp.Header.Get(n); v != "" {
			a.Headers[n] = v
		}
	}
	if style == styleNginx && resp.StatusCode != 200 {
		if resp.StatusCode != 401 && resp.StatusCode != 403 {
			t.Errorf("nginx got %d: auth_request understands only 2xx, 401 and 403", resp.StatusCode)
		}
		a.Status = atoi(t, resp.Header.Get("x-warden-status"))
		body = []byte(resp.Header.Get("x-warden-problem"))
	}
	if a.Status == 200 {
		if style == styleEnvoy {
			a.Removed = resp.Header.Get("x-envoy-auth-headers-to-remove")
		}
		a.Decision = string(decisionlog.ReasonPolicyAllow)
	} else {
		a.Problem = problemOf(t, string(body))
		a.Decision = strings.TrimPrefix(a.Problem["type"].(string), "urn:warden:problem:")
	}
	return a
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("not a status: %q", s)
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// h2cClient speaks HTTP/2 with prior knowledge, as Envoy's HTTP/2 clusters do.
func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: 10 * time.Second}
}

// TestHTTPAgreesWithGRPC: every case of the gRPC end-to-end table
// (envoySamples), sent over HTTP as Envoy's HTTP service (over h2c),
// Traefik and nginx would send it, gets the answer the gRPC Check gives:
// status, reason, problem body, identity and challenge headers, the
// headers to remove, and the same decision record (method, host, path,
// source, principal, action, resource, policies), with transport http.
func TestHTTPAgreesWithGRPC(t *testing.T) {
	e := httpAuthz(t, []string{"127.0.0.0/8"}, func(c *config.Config) {
		c.Identity.Workloads.TrustXFCC = true // the mTLS peer reaches an HTTP service as XFCC
	})
	staff := e.token(t, "alice", "staff")
	h1 := &http.Client{Timeout: 10 * time.Second}
	for _, tc := range envoySamples {
		t.Run(tc.file, func(t *testing.T) {
			if tc.file == "13-tcp-network-filter.json" {
				t.Skip("the TCP network filter has no HTTP request: there is nothing to send over HTTP")
			}
			req := sample(t, tc.file, staff)
			resp, err := e.client.Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			want := grpcAnswer(t, resp)
			if want.Status != tc.status || want.Decision != string(tc.reason) {
				t.Fatalf("gRPC: %d %s, the table says %d %s", want.Status, want.Decision, tc.status, tc.reason)
			}
			wantRec := lastRecord(t, e, resp.GetDynamicMetadata().GetFields()["decision_id"].GetStringValue())
			for _, style := range []string{styleEnvoy, styleTraefik, styleNginx} {
				client := h1
				// (HTTP/2 has no Upgrade: Envoy sends a WebSocket's check over HTTP/1.1.)
				if style == styleEnvoy && tc.file != "12-websocket-upgrade.json" {
					client = h2cClient()
				}
				hr, err := client.Do(asHTTP(t, e.httpAuthz, req, style))
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(hr.Body)
				hr.Body.Close()
				got := httpAnswer(t, hr, body, style)
				if style != styleEnvoy {
					want := want
					want.Removed = ""
					compareAnswers(t, style, got, want)
				} else {
					compareAnswers(t, style, got, want)
					if hr.ProtoMajor != 2 && tc.file != "12-websocket-upgrade.json" {
						t.Errorf("envoy style: spoke %s, want h2c", hr.Proto)
					}
				}
				rec := lastRecord(t, e, hr.Header.Get("x-warden-decision-id"))
				if rec.Transport != authz.TransportHTTP || wantRec.Transport != authz.TransportGRPC {
					t.Errorf("%s: transports %q (http) and %q (grpc)", style, rec.Transport, wantRec.Transport)
				}
				g, w := *rec, *wantRec
				for _, r := range []*decisionlog.Record{&g, &w} {
					r.Time, r.DecisionID, r.LatencyUS, r.Transport, r.Cedar = time.Time{}, "", 0, "", nil
					if r.RateLimit != nil {
						rl := *r.RateLimit
						rl.Remaining = 0 // each Check spends one
						r.RateLimit = &rl
					}
				}
				gb, _ := json.Marshal(g)
				wb, _ := json.Marshal(w)
				if tc.file == "10-missing-authority.json" && style != styleEnvoy {
					// No authority: the forwarded request has none either,
					// and Warden judges the request line's host.
					continue
				}
				if string(gb) != string(wb) {
					t.Errorf("%s: records differ:\n http %s\n grpc %s", style, gb, wb)
				}
			}
		})
	}
}

func compareAnswers(t *testing.T, style string, got, want answer) {
	t.Helper()
	gb, _ := json.Marshal(got.normal())
	wb, _ := json.Marshal(want.normal())
	if string(gb) != string(wb) {
		t.Errorf("%s: answers differ:\n http %s\n grpc %s", style, gb, wb)
	}
}

// lastRecord waits for the decision record with id (records are written off
// the hot path).
func lastRecord(t *testing.T, e *env, id string) *decisionlog.Record {
	t.Helper()
	if id == "" {
		t.Fatal("no decision id")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs, _, err := e.svc.Logs.Query(context.Background(), decisionlog.Filter{}, 1000, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.DecisionID == id {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no record %s", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
