package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.uber.org/goleak"

	"github.com/wardenauthz/warden/authz/checkreq"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/ratelimit"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

// soakCase is one kind of request of the soak mix and the answers it may
// get: want always, or "unavailable" while Redis is paused.
type soakCase struct {
	name string
	req  *authv3.CheckRequest
	want string // the decision record's reason
}

// TestSoak runs Warden (Redis store) under concurrent load for
// WARDEN_SOAK (default 4s; `go tool task soak` runs longer) while its
// policy files are replaced by broken ones and put back, and its Redis is
// paused and resumed. Every answer must be the expected one (a fault may
// turn an allow into "unavailable", never a deny into an allow); the heap
// must stay flat; and once Warden is shut down, no goroutine may be left.
func TestSoak(t *testing.T) {
	d := 4 * time.Second
	if s := os.Getenv("WARDEN_SOAK"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatalf("WARDEN_SOAK: %v", err)
		}
	}
	srv := redistest.Start(t)
	before := goleak.IgnoreCurrent() // what runs now is not the run's
	var heapStart, heapEnd uint64
	t.Run("run", func(t *testing.T) {
		dir := t.TempDir()
		good := map[string][]byte{}
		for _, f := range []string{"api.cedar"} {
			b, err := os.ReadFile(filepath.Join("testdata/policies", f))
			if err != nil {
				t.Fatal(err)
			}
			good[f] = b
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		e := start(t, func(c *config.Config) {
			c.Policy.Dir, c.Policy.Reload = dir, "watch"
			c.Store.Kind, c.Store.Redis.Addrs = "redis", []string{srv.Addr}
			c.RateLimit.Rules[0].Limit = 1 << 30
			c.Revocation.MaxStaleness = 2 * time.Second
		})
		if err := e.svc.Store.Revoke(context.Background(), ratelimit.Revocation{Kind: "jti", ID: "jti-revoked", Until: time.Unix(4102444800, 0)}); err != nil {
			t.Fatal(err)
		}
		cases := soakCases(t, e)

		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		var wg sync.WaitGroup
		var checks, faults atomic.Int64
		var mu sync.Mutex
		wrong := map[string]int{}
		for w := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; ctx.Err() == nil; i++ {
					c := cases[i%len(cases)]
					cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
					resp, err := e.client.Check(cctx, c.req)
					ccancel()
					checks.Add(1)
					got := "grpc error"
					if err == nil {
						got = resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue()
					}
					if got == c.want {
						continue
					}
					if got == "unavailable" && c.want != "policy_deny" && c.want != "request_invalid" {
						faults.Add(1) // Redis paused: fail closed is allowed
						continue
					}
					mu.Lock()
					wrong[c.name+": "+got]++
					mu.Unlock()
				}
			}()
		}
		// Chaos: broken policy files in and out, Redis paused and resumed.
		wg.Add(1)
		go func() {
			defer wg.Done()
			broken := []string{
				`@id("x") permit(principal, action, resource`,                                               // syntax
				`@id("staff-read") permit(principal, action, resource);` + "\n" + string(good["api.cedar"]), // duplicate id
				`permit(principal, action, resource);`,                                                      // no @id
			}
			for i := 0; ctx.Err() == nil; i++ {
				write(t, filepath.Join(dir, "api.cedar"), []byte(broken[i%len(broken)]))
				sleep(ctx, 400*time.Millisecond) // past the watcher's 200ms debounce
				write(t, filepath.Join(dir, "api.cedar"), good["api.cedar"])
				sleep(ctx, 400*time.Millisecond) // past the watcher's 200ms debounce
				if i%2 == 1 {
					srv.Pause(true)
					sleep(ctx, 300*time.Millisecond)
					srv.Pause(false)
				}
			}
		}()
		sleep(ctx, d/4)
		heapStart = heapInUse()
		wg.Wait()
		srv.Pause(false)
		heapEnd = heapInUse()
		t.Logf("%d Checks in %v (%d unavailable during Redis pauses); heap after GC %.1f MB at a quarter, %.1f MB at the end",
			checks.Load(), d, faults.Load(), float64(heapStart)/1e6, float64(heapEnd)/1e6)
		if len(wrong) > 0 {
			t.Errorf("wrong answers: %v", wrong)
		}
		if checks.Load() < 100 {
			t.Errorf("only %d Checks", checks.Load())
		}
		if n := metricValue(t, e.http, `warden_policy_reloads_total{result="error"}`); n < 1 {
			t.Errorf("no failed reload counted (%v): the chaos did not happen", n)
		}
	})
	// No goroutine outlives the shut-down Warden (gRPC, Redis pools and
	// mirror, policy watcher, decision log, key fetches).
	goleak.VerifyNone(t, before)
	// Flat memory: what a longer run retains beyond the first quarter.
	if heapEnd > heapStart+16<<20 {
		t.Errorf("heap grew from %d to %d bytes", heapStart, heapEnd)
	}
}

func soakCases(t *testing.T, e *env) []soakCase {
	build := func(path string, headers ...string) *authv3.CheckRequest {
		req, err := checkreq.Build(checkreq.HTTP{Method: "GET", URL: "http://api.example.com" + path, Headers: headers})
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	bearer := func(tok string) string { return "authorization: Bearer " + tok }
	alice := e.token(t, "alice", "staff")
	expired := e.is.Sign(t, map[string]any{"iss": e.is.URL, "sub": "old", "aud": aud, "iat": 1700000000, "exp": 1700000600})
	revoked := e.is.Sign(t, map[string]any{"iss": e.is.URL, "sub": "rev", "aud": aud, "iat": 1780000000, "exp": 4102444800, "jti": "jti-revoked", "groups": []string{"staff"}})
	many := []string{bearer(alice)}
	for i := range 200 {
		many = append(many, fmt.Sprintf("x-h%d: v", i))
	}
	return []soakCase{
		{"staff read", build("/v1/orders/1", bearer(alice)), "policy_allow"},
		{"no group", build("/v1/orders/1", bearer(e.token(t, "mallory"))), "policy_deny"},
		{"forged", build("/v1/orders/1", bearer(alice[:len(alice)-6]+"AAAAAA")), "token_invalid"},
		{"expired", build("/v1/orders/1", bearer(expired)), "token_invalid"},
		{"revoked", build("/v1/orders/1", bearer(revoked)), "token_revoked"},
		{"anonymous catalog", build("/catalog/search/x"), "policy_allow"},
		{"anonymous orders", build("/v1/orders/1"), "anonymous_deny"},
		{"dot-segments", build("/v1/orders/1/../2", bearer(alice)), "request_invalid"},
		{"headers", build("/v1/orders/1", many...), "request_invalid"},
		{"garbage token", build("/v1/orders/1", bearer(strings.Repeat("x.", 3))), "token_invalid"},
	}
}

func write(t *testing.T, path string, b []byte) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Error(err)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Error(err)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
