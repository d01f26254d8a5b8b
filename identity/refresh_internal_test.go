package identity

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/wardenauthz/warden/identity/oidctest"
)

func TestCacheLifetime(t *testing.T) {
	r := JWKSRefreshConfig{MinInterval: time.Minute, MaxInterval: 15 * time.Minute, UnknownKidInterval: 3 * time.Second}
	now := time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		h    map[string]string
		want time.Duration
	}{
		{nil, time.Minute},
		{map[string]string{"Cache-Control": "max-age=0"}, time.Minute},
		{map[string]string{"Cache-Control": "public, max-age=300, must-revalidate"}, 5 * time.Minute},
		{map[string]string{"Cache-Control": `max-age="600"`}, 10 * time.Minute},
		{map[string]string{"Cache-Control": "max-age=31536000"}, 15 * time.Minute},
		{map[string]string{"Cache-Control": "max-age=99999999999999999999"}, time.Minute}, // unparsable: the minimum
		{map[string]string{"Cache-Control": "max-age=-5"}, time.Minute},
		{map[string]string{"Cache-Control": "no-cache, max-age=600"}, time.Minute},
		{map[string]string{"Cache-Control": "no-store"}, time.Minute},
		{map[string]string{"Cache-Control": "private"}, time.Minute},
		{map[string]string{"Expires": now.Add(7 * time.Minute).Format(http.TimeFormat)}, 7 * time.Minute},
		{map[string]string{"Expires": now.Add(time.Hour).Format(http.TimeFormat), "Date": now.Add(50 * time.Minute).Format(http.TimeFormat)}, 10 * time.Minute},
		{map[string]string{"Expires": now.Add(100 * 24 * time.Hour).Format(http.TimeFormat)}, 15 * time.Minute},
		{map[string]string{"Expires": "0"}, time.Minute},
		{map[string]string{"Expires": now.Add(-time.Hour).Format(http.TimeFormat)}, time.Minute},
		{map[string]string{"Cache-Control": "max-age=120", "Expires": now.Add(time.Hour).Format(http.TimeFormat)}, 2 * time.Minute},
	} {
		h := http.Header{}
		for k, v := range c.h {
			h.Set(k, v)
		}
		if got := cacheLifetime(h, now, r); got != c.want {
			t.Errorf("%v: got %v, want %v", c.h, got, c.want)
		}
	}
}

// TestBackgroundRefreshFollowsCacheControl: the background refresh waits
// what the JWKS's Cache-Control says, within the bounds, and picks up a
// rotation (the old key's removal too) with no token asking for it. The
// waits are recorded and released by the test, not slept.
func TestBackgroundRefreshFollowsCacheControl(t *testing.T) {
	is := oidctest.New(t)
	cfg := Config{Issuers: []IssuerConfig{{Name: "corp", Issuer: is.URL, Audiences: []string{"a"}}}}
	cfg.SetDefaults()
	ks := newRemoteKeys(cfg.Issuers[0], &http.Client{Timeout: fetchTimeout}, time.Now, func(string, string) {}, slog.New(slog.DiscardHandler))
	waits := make(chan time.Duration)
	fire := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	after := func(d time.Duration) <-chan time.Time {
		select {
		case waits <- d:
		case <-ctx.Done():
		}
		return fire
	}
	is.SetHeaders(map[string]string{"Cache-Control": "max-age=300"})
	go ks.background(ctx, after)
	next := func() time.Duration {
		t.Helper()
		select {
		case d := <-waits:
			return d
		case <-time.After(10 * time.Second):
			t.Fatal("no background wait")
			return 0
		}
	}
	if d := next(); d != 5*time.Minute {
		t.Errorf("max-age=300: waits %v", d)
	}
	is.SetHeaders(map[string]string{"Cache-Control": "max-age=0"})
	k2 := oidctest.RSAKey("k2", 2)
	is.Publish(k2)
	fire <- time.Now()
	if d := next(); d != time.Minute {
		t.Errorf("max-age=0: waits %v, want the minimum", d)
	}
	if set := ks.keys.Load(); len(set.Keys) != 1 || set.Keys[0].KeyID != "k2" {
		t.Errorf("keys after the background refresh: %+v", set.Keys)
	}
	is.SetHeaders(map[string]string{"Cache-Control": "max-age=86400000"})
	fire <- time.Now()
	if d := next(); d != 15*time.Minute {
		t.Errorf("huge max-age: waits %v, want the maximum", d)
	}
	// Failures back off, at most to the minimum interval, then recover.
	is.SetDown(true)
	var last time.Duration
	for range 12 {
		fire <- time.Now()
		d := next()
		if d > time.Minute || d < last {
			t.Errorf("backoff %v after %v", d, last)
		}
		last = d
	}
	if last != 30*time.Second {
		t.Errorf("backoff settles at %v, want 30s", last)
	}
	if !ks.ready() {
		t.Error("failures dropped the keys")
	}
	is.SetDown(false)
	is.SetHeaders(nil)
	fire <- time.Now()
	if d := next(); d != time.Minute {
		t.Errorf("no cache headers: waits %v, want the minimum", d)
	}
}
