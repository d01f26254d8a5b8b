package server_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/testclock"
)

// TestUnknownKidWhileProviderDownIs503: with the key source down, a token
// whose kid Warden has not seen is 503 unavailable with Retry-After (Warden
// cannot know whether the provider rotated), not 401; tokens of the cached
// keys keep being judged; /readyz stays ready but shows the failing fetch.
func TestUnknownKidWhileProviderDownIs503(t *testing.T) {
	clk := testclock.New(fixedNow())
	is := oidctest.New(t)
	e := startOpts(t, is, server.Options{Stdout: io.Discard, Now: clk.Now})
	is.SetDown(true)
	clk.Add(4 * time.Second) // past the unknown-kid interval
	rotated := oidctest.SignWith(t, oidctest.RSAKey("k-new", 2), map[string]any{
		"iss": is.URL, "sub": "alice", "aud": aud, "iat": 1780000000, "exp": 4102444800, "groups": []string{"staff"},
	}, nil)
	resp, err := e.client.Check(context.Background(), sample(t, "01-get-bearer-jwt.json", rotated))
	if err != nil {
		t.Fatal(err)
	}
	d := resp.GetDeniedResponse()
	hdr := map[string]string{}
	for _, hv := range d.GetHeaders() {
		hdr[hv.GetHeader().GetKey()] = hv.GetHeader().GetValue()
	}
	reason := resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue()
	if d.GetStatus().GetCode() != 503 || reason != "unavailable" {
		t.Errorf("unknown kid, provider down: %d %s, want 503 unavailable", d.GetStatus().GetCode(), reason)
	}
	if s, err := strconv.Atoi(hdr["retry-after"]); err != nil || s < 1 || s > 3 {
		t.Errorf("retry-after %q", hdr["retry-after"])
	}
	if _, ok := hdr["www-authenticate"]; ok {
		t.Errorf("a 503 with an invalid_token challenge: %v", hdr)
	}
	// The cached key still decides.
	if r := e.reason(t, e.token(t, "mallory", "nobody")); r != "policy_deny" {
		t.Errorf("cached key while down: %s", r)
	}
	r, err := http.Get(e.http + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || !strings.Contains(string(body), "issuer corp: serving the keys fetched at") || !strings.Contains(string(body), "503 Service Unavailable") {
		t.Errorf("/readyz while the key source is down: %d %s", r.StatusCode, body)
	}
}

// TestReadyzSaysWhyNotReady: an issuer whose discovery names another issuer
// (a trailing slash) keeps Warden unready, and /readyz says why.
func TestReadyzSaysWhyNotReady(t *testing.T) {
	is := oidctest.New(t)
	is.SetDiscovery(is.URL+"/", "")
	cfg := loadTestConfig(t, is)
	svc, err := server.New(cfg, server.Options{Stdout: io.Discard, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc.Start(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, detail := svc.Ready()
		if ok {
			t.Fatal("ready with a mismatched issuer")
		}
		if strings.Contains(detail, "failed fetches") {
			for _, want := range []string{"issuer corp: keys not fetched yet", `"` + is.URL + `/"`, `"` + is.URL + `"`, "trailing slash"} {
				if !strings.Contains(detail, want) {
					t.Errorf("readiness detail lacks %s: %s", want, detail)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no fetch failure reported: %s", detail)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHangingJWKSAnswers503BeforeTheDeadline: with the key source hanging,
// a Check whose token has an unknown kid answers 503 unavailable with
// Retry-After before the client's deadline (a CheckResponse, not a gRPC
// DeadlineExceeded), and a Check without a deadline answers 503 within the
// wait cap instead of running into stream_timeout; the fetch goes on in the
// background, and the cached key keeps deciding.
func TestHangingJWKSAnswers503BeforeTheDeadline(t *testing.T) {
	clk := testclock.New(fixedNow())
	is := oidctest.New(t)
	e := startOpts(t, is, server.Options{Stdout: io.Discard, Now: clk.Now})
	is.SetDelay(time.Hour)
	// Deadlines of 800 ms: Warden stops 80 ms short of them (10%), room
	// enough for the answer on a loaded machine (with 300 ms, 30 ms was not,
	// under the race detector beside other work).
	for i, timeout := range []time.Duration{800 * time.Millisecond, 0, 800 * time.Millisecond} {
		clk.Add(4 * time.Second) // past the unknown-kid interval: a fetch starts (or is joined)
		rotated := oidctest.SignWith(t, oidctest.RSAKey("k-new", 2), map[string]any{
			"iss": is.URL, "sub": "alice", "aud": aud, "iat": 1780000000, "exp": 4102444800, "groups": []string{"staff"},
		}, nil)
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, timeout)
		}
		resp, err := e.client.Check(ctx, sample(t, "01-get-bearer-jwt.json", rotated))
		cancel()
		if err != nil {
			t.Fatalf("Check %d (deadline %v): %v, want a 503 answer", i, timeout, err)
		}
		d := resp.GetDeniedResponse()
		reason := resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue()
		if d.GetStatus().GetCode() != 503 || reason != "unavailable" {
			t.Errorf("Check %d (deadline %v): %d %s, want 503 unavailable", i, timeout, d.GetStatus().GetCode(), reason)
		}
		retry := ""
		for _, hv := range d.GetHeaders() {
			if hv.GetHeader().GetKey() == "retry-after" {
				retry = hv.GetHeader().GetValue()
			}
		}
		if s, err := strconv.Atoi(retry); err != nil || s < 1 || s > 3 {
			t.Errorf("Check %d: retry-after %q", i, retry)
		}
	}
	if r := e.reason(t, e.token(t, "mallory", "nobody")); r != "policy_deny" {
		t.Errorf("cached key while the key source hangs: %s", r)
	}
}
