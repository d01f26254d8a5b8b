package server_test

import (
	"io"
	"strings"
	"testing"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/ratelimit"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

// withRedis sets the store to the redis-server at addr.
func withRedis(addr string) func(*config.Config) {
	return func(c *config.Config) {
		c.Store.Kind = "redis"
		c.Store.Redis.Addrs = []string{addr}
	}
}

// TestFirstPolicyLoadIsMetered: the policy engine's reload hook is given
// at construction, so the first load is counted and timed like a reload.
func TestFirstPolicyLoadIsMetered(t *testing.T) {
	e := start(t)
	if n := metricValue(t, e.http, `warden_policy_reloads_total{result="ok"}`); n != 1 {
		t.Errorf(`warden_policy_reloads_total{result="ok"} = %v, want 1 (the first load)`, n)
	}
	if n := metricValue(t, e.http, "warden_policy_reload_duration_seconds_count"); n != 1 {
		t.Errorf("warden_policy_reload_duration_seconds_count = %v, want 1 (the first load)", n)
	}
}

// TestShutdownReportsCloseErrors: an error closing the store on shutdown
// is not dropped: Serve returns it, named by its config key.
func TestShutdownReportsCloseErrors(t *testing.T) {
	srv := redistest.Start(t)
	e := start(t, withRedis(srv.Addr))
	// The store's client closed behind the service's back: its Close on
	// shutdown fails.
	if err := e.svc.Store.(*ratelimit.Redis).Close(); err != nil {
		t.Fatal(err)
	}
	e.cancel()
	err := <-e.done
	e.done <- nil // for the cleanup
	if err == nil || !strings.Contains(err.Error(), "shutdown: store.redis: redis: client is closed") {
		t.Errorf("Serve: %v, want the store's close error", err)
	}
}

// TestCloseReportsErrors: Close returns every closer's error, once.
func TestCloseReportsErrors(t *testing.T) {
	srv := redistest.Start(t)
	cfg := loadTestConfig(t, oidctest.New(t))
	withRedis(srv.Addr)(cfg)
	svc, err := server.New(cfg, server.Options{Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Store.(*ratelimit.Redis).Close(); err != nil {
		t.Fatal(err)
	}
	if err := svc.Close(); err == nil || !strings.Contains(err.Error(), "store.redis") {
		t.Errorf("Close: %v, want the store's close error", err)
	}
	if err := svc.Close(); err != nil {
		t.Errorf("second Close: %v, want nil (nothing left to close)", err)
	}
}
