package server_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/testlog"
	"github.com/wardenauthz/warden/ratelimit"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

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
// is logged, named by its config key, not dropped; Close returns it.
func TestShutdownReportsCloseErrors(t *testing.T) {
	srv := redistest.Start(t)
	var logs testlog.Buffer
	o := server.Options{Stdout: io.Discard, Now: time.Now, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	e := startOpts(t, oidctest.New(t), o, func(c *config.Config) {
		c.Store.Kind = "redis"
		c.Store.Redis.Addrs = []string{srv.Addr}
	})
	// The store's client closed behind the service's back: its Close on
	// shutdown fails.
	if err := e.svc.Store.(*ratelimit.Redis).Close(); err != nil {
		t.Fatal(err)
	}
	e.cancel()
	if err := <-e.done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	e.done <- nil // for the cleanup
	got := logs.String()
	if !strings.Contains(got, `"msg":"shutdown incomplete"`) || !strings.Contains(got, "store.redis: redis: client is closed") {
		t.Errorf("shutdown log does not report the store's close error:\n%s", got)
	}
}

// TestCloseReportsErrors: Close returns every closer's error, once.
func TestCloseReportsErrors(t *testing.T) {
	srv := redistest.Start(t)
	cfg := loadTestConfig(t, oidctest.New(t))
	cfg.Store.Kind = "redis"
	cfg.Store.Redis.Addrs = []string{srv.Addr}
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
