package identity_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/testlog"
	"github.com/wardenauthz/warden/internal/testwait"
)

// TestRotatedKeyAcceptedWithinSeconds: a provider that starts signing with a
// key it never published before is followed within the unknown-kid interval
// (3 s by default, so within 5 s), not the old 30 s cooldown; a token of a
// key the fresh set lacks is refused as unknown.
func TestRotatedKeyAcceptedWithinSeconds(t *testing.T) {
	is := oidctest.New(t)
	a, clk := newAuth(t, is)
	base := is.Fetches()
	k2 := oidctest.RSAKey("k2", 2)
	is.Publish(k2) // rotated at once: k1 gone, k2 new
	tok := oidctest.SignWith(t, k2, is.Claims("alice", aud), map[jose.HeaderKey]any{"typ": "at+jwt"})
	// Just after the start-up fetch the keys are fresh: refused, no fetch.
	if _, err := a.Authenticate(context.Background(), bearer(tok)); !errors.Is(err, identity.ErrUnknownKey) {
		t.Fatalf("right after a fetch: got %v, want ErrUnknownKey", err)
	}
	if got := is.Fetches() - base; got != 0 {
		t.Fatalf("fetches within the unknown-kid interval: %d", got)
	}
	clk.Add(3 * time.Second)
	if _, err := a.Authenticate(context.Background(), bearer(tok)); err != nil {
		t.Fatalf("3 s after the rotation: %v", err)
	}
	if got := is.Fetches() - base; got != 1 {
		t.Errorf("fetches: %d, want 1", got)
	}
	// The old key is gone from the fetched set.
	clk.Add(3 * time.Second)
	old := oidctest.SignWith(t, oidctest.RSAKey("k1", 0), is.Claims("bob", aud), nil)
	if _, err := a.Authenticate(context.Background(), bearer(old)); !errors.Is(err, identity.ErrUnknownKey) {
		t.Errorf("removed key: got %v, want ErrUnknownKey", err)
	}
}

// TestKidStormCostsOneFetchPerInterval: random key ids, concurrently, over a
// simulated minute with the provider up and then down, cost at most one
// fetch per unknown-kid interval; with the provider down every one of them
// is unavailable, never a 401 and never an allow.
func TestKidStormCostsOneFetchPerInterval(t *testing.T) {
	for _, down := range []bool{false, true} {
		t.Run(fmt.Sprintf("down=%v", down), func(t *testing.T) {
			is := oidctest.New(t)
			a, clk := newAuth(t, is)
			is.SetDown(down)
			clk.Add(3 * time.Second) // the start-up fetch is no longer news
			base := is.Fetches()
			const steps = 30 // of 1 s
			for step := range steps {
				var wg sync.WaitGroup
				for i := range 20 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						k := oidctest.RSAKey(fmt.Sprintf("storm-%d-%d", step, i), i)
						tok := oidctest.SignWith(t, k, is.Claims("mallory", aud), nil)
						_, err := a.Authenticate(context.Background(), bearer(tok))
						switch {
						case err == nil:
							t.Errorf("storm token allowed")
						case down && !identity.IsUnavailable(err):
							t.Errorf("provider down: got %v, want unavailable", err)
						case !down && !errors.Is(err, identity.ErrUnknownKey):
							t.Errorf("provider up: got %v, want ErrUnknownKey", err)
						}
					}()
				}
				wg.Wait()
				clk.Add(time.Second)
			}
			if got, limit := is.Fetches()-base, int64(steps/3+1); got > limit {
				t.Errorf("fetches: %d over %d simulated seconds, want at most %d", got, steps, limit)
			}
		})
	}
}

// logBuffer is a goroutine-safe JSON log sink.
type logBuffer struct{ testlog.Buffer }

func (b *logBuffer) lines(t *testing.T) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestFetchFailuresLogged: every failed fetch is logged, at most once per
// 30 s per issuer (with the count of those not logged), naming the issuer,
// the URL and the cause, and KeyStatus reports it; recovery is logged too.
func TestFetchFailuresLogged(t *testing.T) {
	is := oidctest.New(t)
	var logs logBuffer
	clk := newClock()
	cfg := identity.Config{Issuers: []identity.IssuerConfig{{Name: "corp", Issuer: is.URL, Audiences: []string{aud}}}}
	a, err := identity.New(cfg, identity.Options{Now: clk.Now, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	valid := is.Sign(t, is.Claims("alice", aud))
	if _, err := a.Authenticate(context.Background(), bearer(valid)); err != nil {
		t.Fatal(err)
	}
	is.SetDown(true)
	base := is.Fetches()
	for i := range 40 { // 40 fetches 3 s apart: two minutes
		clk.Add(3 * time.Second)
		tok := oidctest.SignWith(t, oidctest.RSAKey(fmt.Sprintf("u%d", i), 1), is.Claims("m", aud), nil)
		if _, err := a.Authenticate(context.Background(), bearer(tok)); !identity.IsUnavailable(err) {
			t.Fatalf("got %v, want unavailable", err)
		}
	}
	if got := is.Fetches() - base; got != 40 {
		t.Fatalf("fetches: %d, want 40", got)
	}
	lines := logs.lines(t)
	if len(lines) < 4 || len(lines) > 5 {
		t.Fatalf("%d log lines for 40 failures over 2 minutes, want 4 or 5:\n%v", len(lines), lines)
	}
	for _, l := range lines {
		if l["issuer"] != "corp" || l["issuer_url"] != is.URL || l["url"] != is.URL+"/jwks" || !strings.Contains(fmt.Sprint(l["err"]), "503") {
			t.Errorf("log line lacks issuer, URL or cause: %v", l)
		}
	}
	if n := lines[1]["not_logged"]; n == nil || n.(float64) < 8 {
		t.Errorf("second line does not count the unlogged failures: %v", lines[1])
	}
	st := a.KeyStatus()
	if len(st) != 1 || !st[0].Ready || st[0].Failures != 40 || !strings.Contains(st[0].LastError, "503") || st[0].URL != is.URL+"/jwks" {
		t.Errorf("KeyStatus: %+v", st)
	}
	is.SetDown(false)
	clk.Add(3 * time.Second)
	if _, err := a.Authenticate(context.Background(), bearer(oidctest.SignWith(t, oidctest.RSAKey("u-late", 1), is.Claims("m", aud), nil))); !errors.Is(err, identity.ErrUnknownKey) {
		t.Fatalf("after recovery: got %v", err)
	}
	if last := logs.lines(t); !strings.Contains(fmt.Sprint(last[len(last)-1]["msg"]), "fetched again") {
		t.Errorf("recovery not logged: %v", last[len(last)-1])
	}
	if st := a.KeyStatus(); st[0].LastError != "" || st[0].Failures != 0 {
		t.Errorf("KeyStatus after recovery: %+v", st)
	}
}

// TestDiscoveryIssuerMismatch: a configured issuer that differs from the
// discovery document's (a trailing slash) never becomes ready, and says why
// in the log and KeyStatus, naming both values; Warnings flags the slash
// before start.
func TestDiscoveryIssuerMismatch(t *testing.T) {
	is := oidctest.New(t)
	var logs logBuffer
	cfg := identity.Config{Issuers: []identity.IssuerConfig{{Name: "corp", Issuer: is.URL + "/", Audiences: []string{aud}}}}
	cfg.SetDefaults()
	if w := cfg.Warnings(); len(w) != 1 || w[0].Path != "issuers[0].issuer" || !strings.Contains(w[0].Message, "trailing slash") {
		t.Errorf("Warnings: %q", w)
	}
	a, err := identity.New(cfg, identity.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a.Start(ctx)
	testwait.Until(t, 5*time.Second, "no failed fetch", func() bool { return a.KeyStatus()[0].Failures > 0 })
	st := a.KeyStatus()[0]
	for _, want := range []string{fmt.Sprintf("%q", is.URL), fmt.Sprintf("%q", is.URL+"/"), "trailing slash", "/.well-known/openid-configuration"} {
		if !strings.Contains(st.LastError, want) {
			t.Errorf("error lacks %s: %s", want, st.LastError)
		}
	}
	if st.Ready || len(a.NotReady()) != 1 {
		t.Errorf("ready with a mismatched issuer: %+v", st)
	}
	if lines := logs.lines(t); len(lines) == 0 || !strings.Contains(fmt.Sprint(lines[0]["err"]), "trailing slash") {
		t.Errorf("mismatch not logged: %v", lines)
	}
	ok := identity.Config{Issuers: []identity.IssuerConfig{{Name: "corp", Issuer: is.URL, Audiences: []string{aud}}}}
	ok.SetDefaults()
	if w := ok.Warnings(); len(w) != 0 {
		t.Errorf("Warnings without a slash: %q", w)
	}
}

// TestInsecureHTTPRefused: plain http issuers and JWKS URLs are refused on
// hosts that are not loopback, unless insecure_http; so is a jwks_uri that
// discovery downgrades to plain http.
func TestInsecureHTTPRefused(t *testing.T) {
	for _, c := range []struct {
		issuer, jwks string
		insecure     bool
		bad          string
	}{
		{"http://idp.example.com", "", false, "issuers[0].issuer"},
		{"HTTP://idp.example.com", "", false, "issuers[0].issuer"},
		{"http://10.0.0.1:8080", "", false, "issuers[0].issuer"},
		{"http://[2001:db8::1]", "", false, "issuers[0].issuer"},
		{"http://localhost.example.com", "", false, "issuers[0].issuer"},
		{"https://idp.example.com", "http://keys.example.com/jwks", false, "issuers[0].jwks_uri"},
		{"http://idp.example.com", "", true, ""},
		{"https://idp.example.com", "http://keys.example.com/jwks", true, ""},
		{"http://127.0.0.1:8080", "", false, ""},
		{"http://127.9.9.9", "", false, ""},
		{"http://localhost:8080", "", false, ""},
		{"http://[::1]:8080", "", false, ""},
		{"https://idp.example.com", "", false, ""},
	} {
		cfg := identity.Config{Issuers: []identity.IssuerConfig{{Name: "corp", Issuer: c.issuer, JWKSURI: c.jwks, InsecureHTTP: c.insecure, Audiences: []string{aud}}}}
		cfg.SetDefaults()
		err := cfg.Validate()
		switch {
		case c.bad == "" && err != nil:
			t.Errorf("%s %s insecure=%v: %v", c.issuer, c.jwks, c.insecure, err)
		case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad+": ") || !strings.Contains(err.Error(), "insecure_http")):
			t.Errorf("%s %s: got %v, want an error at %s", c.issuer, c.jwks, err, c.bad)
		}
	}
	// Discovery on loopback pointing the keys at a plain http host elsewhere.
	is := oidctest.New(t)
	is.SetDiscovery("", "http://keys.example.com/jwks")
	cfg := identity.Config{Issuers: []identity.IssuerConfig{{Name: "corp", Issuer: is.URL, Audiences: []string{aud}}}}
	a, err := identity.New(cfg, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Authenticate(context.Background(), bearer(is.Sign(t, is.Claims("alice", aud))))
	if !identity.IsUnavailable(err) || !strings.Contains(err.Error(), "insecure_http") {
		t.Errorf("downgraded jwks_uri: got %v", err)
	}
	// A redirect to plain http elsewhere is refused too, before any request
	// leaves loopback.
	redirect := httptest.NewServer(http.RedirectHandler("http://keys.example.com/jwks", http.StatusFound))
	defer redirect.Close()
	cfg = identity.Config{Issuers: []identity.IssuerConfig{{Name: "corp", Issuer: is.URL, JWKSURI: redirect.URL + "/jwks", Audiences: []string{aud}}}}
	if a, err = identity.New(cfg, identity.Options{}); err != nil {
		t.Fatal(err)
	}
	_, err = a.Authenticate(context.Background(), bearer(is.Sign(t, is.Claims("alice", aud))))
	if !identity.IsUnavailable(err) || !strings.Contains(err.Error(), "redirect to http://keys.example.com/jwks refused") {
		t.Errorf("redirect to plain http: got %v", err)
	}
}

// TestFetchErrorsRedactPasswords: a jwks_uri with credentials never shows
// its password in errors, KeyStatus or the log.
func TestFetchErrorsRedactPasswords(t *testing.T) {
	is := oidctest.New(t)
	is.SetDown(true)
	var logs logBuffer
	jwks := strings.Replace(is.URL, "http://", "http://user:s3cr3t-pw@", 1) + "/jwks"
	cfg := identity.Config{Issuers: []identity.IssuerConfig{{Name: "corp", Issuer: is.URL, JWKSURI: jwks, Audiences: []string{aud}}}}
	a, err := identity.New(cfg, identity.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Authenticate(context.Background(), bearer(is.Sign(t, is.Claims("alice", aud))))
	st := a.KeyStatus()[0]
	logged := logs.String()
	if err == nil || st.LastError == "" || logged == "" {
		t.Fatalf("no failure: %v %+v %q", err, st, logged)
	}
	for _, s := range []string{err.Error(), st.LastError, st.URL, logged} {
		if strings.Contains(s, "s3cr3t-pw") {
			t.Errorf("password shown: %s", s)
		}
	}
}
