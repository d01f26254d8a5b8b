package server_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wardenauthz/warden/authz"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/decisionlog"
)

type capture struct {
	mu   sync.Mutex
	recs []*decisionlog.Record
}

func (c *capture) Record(r *decisionlog.Record) {
	c.mu.Lock()
	c.recs = append(c.recs, r)
	c.mu.Unlock()
}

// TestRecordWhenEnvoyCancels: a Check whose caller has gone (Envoy's
// timeout) still leaves its decision record.
func TestRecordWhenEnvoyCancels(t *testing.T) {
	e := start(t)
	rec := &capture{}
	a := authz.New(authz.Options{Authenticator: e.svc.Authn, Policies: e.svc.Policies, Recorder: rec, Now: fixedNow})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a.Evaluate(ctx, sample(t, "02-post-json-body.json", e.token(t, "alice", "staff")))
	if len(rec.recs) != 1 || rec.recs[0].Decision != "deny" {
		t.Fatalf("records: %+v", rec.recs)
	}
}

type slowSink struct{}

func (slowSink) WriteLine([]byte) error { time.Sleep(time.Millisecond); return nil }
func (slowSink) Flush() error           { return nil }
func (slowSink) Close() error           { return nil }

// BenchmarkSlowSink: a sink that takes 1 ms per record leaves the Check's
// cost where it is (records are dropped and counted instead).
func BenchmarkSlowSink(b *testing.B) {
	e := start(b, func(c *config.Config) { c.RateLimit.Rules[0].Limit, c.RateLimit.Rules[0].Burst = 1e9, 1e9 })
	req := sample(b, "01-get-bearer-jwt.json", e.token(b, "alice", "staff"))
	for _, tc := range []struct {
		name string
		rec  authz.Recorder
	}{
		{"no-log", nil},
		{"slow-sink", decisionlog.New(decisionlog.Options{Size: 8192, Sinks: []decisionlog.LineSink{slowSink{}}})},
	} {
		a := authz.New(authz.Options{Authenticator: e.svc.Authn, Policies: e.svc.Policies, Recorder: tc.rec, Now: fixedNow})
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				a.Evaluate(context.Background(), req)
			}
		})
	}
}
