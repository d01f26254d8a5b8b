package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenauthz/warden/internal/testclock"
	"github.com/wardenauthz/warden/internal/testwait"
	"github.com/wardenauthz/warden/ratelimit"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

// store is what both stores offer.
type store interface {
	ratelimit.Counter
	Revoke(ctx context.Context, r ratelimit.Revocation) error
	Revoked(ctx context.Context, subject, jti string, iat time.Time) (bool, error)
	List(ctx context.Context, now time.Time) ([]ratelimit.Revocation, error)
}

func newRedis(t *testing.T, srv *redistest.Server, staleness time.Duration) *ratelimit.Redis {
	t.Helper()
	return startRedis(t, []string{srv.Addr}, ratelimit.RedisOptions{MaxStaleness: staleness, Timeout: 200 * time.Millisecond})
}

// startRedis connects a Redis store to addrs and follows its revocations
// until the test ends.
func startRedis(t *testing.T, addrs []string, o ratelimit.RedisOptions) *ratelimit.Redis {
	t.Helper()
	r := ratelimit.NewRedis(ratelimit.NewRedisClient(&redis.UniversalOptions{Addrs: addrs}, o.Timeout), o)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); r.Close() })
	r.Start(ctx)
	return r
}

// TestConformance runs the same expectations against both stores.
func TestConformance(t *testing.T) {
	redisOf := map[store]*redistest.Server{}
	stores := map[string]func(t *testing.T) store{
		"memory": func(*testing.T) store { return ratelimit.NewMemory() },
		"redis": func(t *testing.T) store {
			srv := redistest.Start(t)
			r := newRedis(t, srv, 5*time.Second)
			redisOf[r] = srv
			return r
		},
	}
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			t.Run("gcra", func(t *testing.T) {
				s := mk(t)
				l := ratelimit.NewLimiter([]ratelimit.Rule{{Name: "r", Limit: 10, Per: time.Minute, Burst: 10, Key: []string{"principal"}}}, s, nil)
				req := &ratelimit.Request{PrincipalType: "User", Principal: "corp|alice"}
				for i := range 10 {
					d, err := l.Allow(context.Background(), req)
					if err != nil || !d.Allowed {
						t.Fatalf("request %d: %+v %v", i+1, d, err)
					}
					if d.Remaining != 9-i {
						t.Errorf("request %d: remaining %d, want %d", i+1, d.Remaining, 9-i)
					}
				}
				d, err := l.Allow(context.Background(), req)
				if err != nil || d.Allowed || d.RetryAfter <= 5*time.Second || d.RetryAfter > 6*time.Second {
					t.Fatalf("11th: %+v %v, want denied with Retry-After in (5s, 6s]", d, err)
				}
			})
			t.Run("revocations", func(t *testing.T) {
				s := mk(t)
				ctx := context.Background()
				now := time.Now()
				if err := s.Revoke(ctx, ratelimit.Revocation{Kind: "jti", ID: "j1", Until: now.Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
				if err := s.Revoke(ctx, ratelimit.Revocation{Kind: "subject", ID: "corp|bob", Before: now}); err != nil {
					t.Fatal(err)
				}
				for _, tc := range []struct {
					subject, jti string
					iat          time.Time
					want         bool
				}{
					{"corp|alice", "j1", now, true},
					{"corp|alice", "j2", now, false},
					{"corp|bob", "j3", now.Add(-time.Minute), true},
					{"corp|bob", "j3", now.Add(time.Minute), false},
				} {
					if got, err := s.Revoked(ctx, tc.subject, tc.jti, tc.iat); err != nil || got != tc.want {
						t.Errorf("%+v: got %v %v", tc, got, err)
					}
				}
				list, err := s.List(ctx, now)
				if err != nil || len(list) != 2 || list[0].Kind != "jti" || list[1].ID != "corp|bob" {
					t.Errorf("list: %+v %v", list, err)
				}
			})
			// A token is accepted until exp + its issuer's clock_skew (up
			// to 5m): its jti revocation outlives exp by RevocationGrace, in
			// the store, its list and (Redis) a new replica's mirror; List
			// forgets nothing Revoked still needs.
			t.Run("jti revocation outlives exp by the skew", func(t *testing.T) {
				s := mk(t)
				ctx := context.Background()
				now := time.Now()
				for id, exp := range map[string]time.Duration{"skewed": -2 * time.Minute, "edge": -5*time.Minute - 30*time.Second, "gone": -7 * time.Minute} {
					if err := s.Revoke(ctx, ratelimit.Revocation{Kind: "jti", ID: id, Until: now.Add(exp)}); err != nil {
						t.Fatal(err)
					}
				}
				list, err := s.List(ctx, now)
				if err != nil || len(list) != 2 || list[0].ID != "edge" || list[1].ID != "skewed" {
					t.Errorf("list: %+v %v, want edge and skewed", list, err)
				}
				for _, id := range []string{"skewed", "edge"} {
					if got, err := s.Revoked(ctx, "corp|alice", id, now.Add(-time.Hour)); err != nil || !got {
						t.Errorf("%s after List: revoked %v %v, want true", id, got, err)
					}
				}
				if srv, ok := redisOf[s]; ok {
					fresh := newRedis(t, srv, 5*time.Second)
					if got, err := fresh.Revoked(ctx, "corp|alice", "skewed", now.Add(-time.Hour)); err != nil || !got {
						t.Errorf("a new replica: revoked %v %v, want true", got, err)
					}
				}
			})
		})
	}
}

// TestRedisReplicas: two replicas share one redis-server: one limit in
// total, and a revocation made through one is honoured by the other
// within a second; revocations survive a restart of Warden.
func TestRedisReplicas(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newRedis(t, srv, 5*time.Second), newRedis(t, srv, 5*time.Second)
	rules := []ratelimit.Rule{{Name: "r", Limit: 10, Per: time.Minute, Burst: 10, Key: []string{"principal"}}}
	la, lb := ratelimit.NewLimiter(rules, a, nil), ratelimit.NewLimiter(rules, b, nil)
	req := &ratelimit.Request{PrincipalType: "User", Principal: "corp|alice"}
	allowed := 0
	for i := range 14 {
		l := la
		if i%2 == 1 {
			l = lb
		}
		d, err := l.Allow(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			allowed++
		}
	}
	if allowed != 10 {
		t.Errorf("allowed across both replicas: %d, want 10", allowed)
	}
	if err := a.Revoke(context.Background(), ratelimit.Revocation{Kind: "jti", ID: "j9", Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, time.Second, "revocation through replica a not seen by replica b", func() bool {
		ok, _ := b.Revoked(context.Background(), "corp|x", "j9", time.Now())
		return ok
	})
	c := newRedis(t, srv, 5*time.Second) // a Warden started later
	if ok, err := c.Revoked(context.Background(), "corp|x", "j9", time.Now()); !ok || err != nil {
		t.Errorf("revocation not persisted for a new replica: %v %v", ok, err)
	}
}

// TestRedisFaults: a paused redis-server makes rate-limit calls fail within
// their deadline, the revocation view goes stale (fail closed) after
// MaxStaleness, and everything recovers by itself when Redis is back.
func TestRedisFaults(t *testing.T) {
	srv := redistest.Start(t)
	// The revocation view's age is measured on the injected clock: the
	// test moves it past max_staleness instead of sleeping.
	const staleness = 600 * time.Millisecond
	clk := testclock.New(time.Now())
	r := startRedis(t, []string{srv.Addr}, ratelimit.RedisOptions{MaxStaleness: staleness, Timeout: 200 * time.Millisecond, Now: clk.Now})
	l := ratelimit.NewLimiter([]ratelimit.Rule{{Name: "r", Limit: 100, Per: time.Minute, Key: []string{"principal"}}}, r, nil)
	req := &ratelimit.Request{PrincipalType: "User", Principal: "u"}
	if _, err := l.Allow(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Revoked(context.Background(), "s", "j", time.Now()); err != nil {
		t.Fatalf("fresh view: %v", err)
	}
	srv.Pause(true)
	// Each call ends at its 200ms deadline: go-redis's own read timeout
	// (or a retry) must not stretch it (the old client took 500ms).
	for i := range 3 {
		start := time.Now()
		if _, err := l.Allow(context.Background(), req); err == nil {
			t.Error("paused Redis: want an error")
		}
		if d := time.Since(start); d > 200*time.Millisecond+150*time.Millisecond {
			t.Errorf("paused Redis, call %d: took %s, want its 200ms deadline (+150ms for a loaded machine)", i, d)
		}
	}
	// The view is as old as the clock says: at max_staleness it still
	// serves, past it it fails closed.
	clk.Add(staleness)
	if _, err := r.Revoked(context.Background(), "s", "j", time.Now()); err != nil {
		t.Errorf("at max_staleness: got %v, want the view served", err)
	}
	clk.Add(time.Millisecond)
	if _, err := r.Revoked(context.Background(), "s", "j", time.Now()); !errors.Is(err, ratelimit.ErrStale) {
		t.Errorf("after max_staleness: got %v, want ErrStale", err)
	}
	srv.Pause(false)
	testwait.NoError(t, 5*time.Second, func() error {
		_, err1 := r.Revoked(context.Background(), "s", "j", time.Now())
		_, err2 := l.Allow(context.Background(), req)
		return errors.Join(err1, err2)
	})
}

// TestRedisCluster: on a 3-master cluster, buckets and revocations spread
// across slots work (no CROSSSLOT), and replicas share them.
func TestRedisCluster(t *testing.T) {
	addrs := redistest.StartCluster(t)
	mk := func() *ratelimit.Redis { return startRedis(t, addrs, ratelimit.RedisOptions{Timeout: time.Second}) }
	a, b := mk(), mk()
	rules := []ratelimit.Rule{
		{Name: "user", Limit: 5, Per: time.Minute, Burst: 5, Key: []string{"principal"}},
		{Name: "ip", Limit: 1000, Per: time.Minute, Burst: 1000, Key: []string{"source_ip"}},
	}
	la, lb := ratelimit.NewLimiter(rules, a, nil), ratelimit.NewLimiter(rules, b, nil)
	for u := range 20 { // 20 principals: keys in many slots
		req := &ratelimit.Request{PrincipalType: "User", Principal: fmt.Sprintf("corp|u%d", u), SourceIP: "10.0.0.1"}
		allowed := 0
		for i := range 7 {
			l := la
			if i%2 == 1 {
				l = lb
			}
			d, err := l.Allow(context.Background(), req)
			if err != nil {
				t.Fatalf("principal %d: %v", u, err)
			}
			if d.Allowed {
				allowed++
			}
		}
		if allowed != 5 {
			t.Errorf("principal %d: %d allowed across replicas, want 5", u, allowed)
		}
	}
	for i := range 10 {
		if err := a.Revoke(context.Background(), ratelimit.Revocation{Kind: "jti", ID: fmt.Sprintf("j%d", i), Until: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	testwait.NoError(t, 2*time.Second, func() error {
		n := 0
		for i := range 10 {
			if ok, _ := b.Revoked(context.Background(), "s", fmt.Sprintf("j%d", i), time.Now()); ok {
				n++
			}
		}
		if n != 10 {
			return fmt.Errorf("replica b sees %d of 10 revocations", n)
		}
		return nil
	})
	c := mk() // a new replica reads them all back from every master
	if list, err := c.List(context.Background(), time.Now()); err != nil || len(list) != 10 {
		t.Errorf("list on the cluster: %d entries, %v", len(list), err)
	}
}

// TestRedisCallsLeftBehindAreBounded: with Redis stopped, Takes return at
// their deadline even when go-redis has not, and the calls they leave
// running are bounded: past MaxInflight outstanding, a Take fails at once
// with ErrBusy instead of starting another.
func TestRedisCallsLeftBehindAreBounded(t *testing.T) {
	srv := redistest.Start(t)
	const inflight, n = 4, 64
	r := startRedis(t, []string{srv.Addr}, ratelimit.RedisOptions{Timeout: time.Second, MaxStaleness: time.Minute, MaxInflight: inflight})
	b := []ratelimit.Bucket{{Key: "k", Interval: time.Second, Tolerance: time.Second}}
	if _, err := r.Take(context.Background(), time.Now(), b); err != nil {
		t.Fatal(err)
	}
	srv.Pause(true)
	defer srv.Pause(false)
	errs := make(chan error, n)
	var ready, done sync.WaitGroup
	ready.Add(n)
	done.Add(n)
	for range n {
		go func() {
			defer done.Done()
			ready.Done()
			ready.Wait()
			_, err := r.Take(context.Background(), time.Now(), b)
			errs <- err
		}()
	}
	ready.Wait()
	// While the first calls wait on the stopped Redis, the rest are refused.
	busy := 0
	for range n - inflight {
		if err := <-errs; errors.Is(err, ratelimit.ErrBusy) {
			busy++
		}
	}
	done.Wait()
	t.Logf("%d concurrent Takes, %d in flight at most: %d refused as busy", n, inflight, busy)
	if busy < (n-inflight)/2 {
		t.Errorf("%d of %d Takes refused as busy, want most", busy, n-inflight)
	}
}

// TestRedisConcurrentTakesCountOnce: concurrent Takes share pipelines
// (redis_batch.go), and every one is counted exactly once: of 400 Takes
// on one bucket that allows 100, exactly 100 are allowed.
func TestRedisConcurrentTakesCountOnce(t *testing.T) {
	srv := redistest.Start(t)
	r := startRedis(t, []string{srv.Addr}, ratelimit.RedisOptions{Timeout: 5 * time.Second, MaxStaleness: time.Minute})
	b := []ratelimit.Bucket{{Key: "shared", Interval: time.Hour, Tolerance: 100 * time.Hour}}
	const workers, each = 40, 10
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				outs, err := r.Take(context.Background(), time.Now(), b)
				if err != nil {
					t.Error(err)
					return
				}
				if outs[0].Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 100 {
		t.Errorf("%d of %d Takes allowed, want exactly 100", n, workers*each)
	}
}

// pipelineCounter counts the pipelines a client sends.
type pipelineCounter struct{ n atomic.Int64 }

func (*pipelineCounter) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (*pipelineCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (p *pipelineCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		p.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestRedisTakesShareRoundTrips: on one P, as in a pinned server, Takes
// made at the same time go out together. Without the batchers yielding,
// the Take that woke a batcher went out alone (1.2 Takes a pipeline in
// the load benchmark): here, a burst of Checks ready at once then took
// three pipelines (one from each batcher with the Take that woke it, then
// the rest), where it takes two.
func TestRedisTakesShareRoundTrips(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	srv := redistest.Start(t)
	o := ratelimit.RedisOptions{Timeout: 5 * time.Second, MaxStaleness: time.Minute}
	c := ratelimit.NewRedisClient(&redis.UniversalOptions{Addrs: []string{srv.Addr}}, o.Timeout)
	var count pipelineCounter
	c.AddHook(&count)
	r := ratelimit.NewRedis(c, o)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); r.Close() })
	r.Start(ctx)
	b := []ratelimit.Bucket{{Key: "k", Interval: time.Millisecond, Tolerance: time.Hour}}
	if _, err := r.Take(ctx, time.Now(), b); err != nil { // the script loaded
		t.Fatal(err)
	}
	const bursts, checks = 20, 32
	start := count.n.Load()
	for range bursts {
		ready := make(chan struct{})
		var wg sync.WaitGroup
		for range checks {
			wg.Go(func() {
				<-ready
				if _, err := r.Take(ctx, time.Now(), b); err != nil {
					t.Error(err)
				}
			})
		}
		runtime.Gosched() // all of them waiting on ready
		close(ready)
		wg.Wait()
	}
	pipelines := count.n.Load() - start
	t.Logf("%d bursts of %d Takes in %d pipelines", bursts, checks, pipelines)
	if 2*pipelines > 5*bursts {
		t.Errorf("%d bursts of %d Takes in %d pipelines, want about 2 a burst (the batchers)", bursts, checks, pipelines)
	}
}

// TestRedisTakeAfterScriptFlush: when Redis has lost the GCRA script (a
// restart, a failover, SCRIPT FLUSH), the Take loads it and sends again
// only what failed: the bucket is counted once.
func TestRedisTakeAfterScriptFlush(t *testing.T) {
	srv := redistest.Start(t)
	r := startRedis(t, []string{srv.Addr}, ratelimit.RedisOptions{Timeout: 5 * time.Second, MaxStaleness: time.Minute})
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	b := []ratelimit.Bucket{{Key: "a", Interval: time.Hour, Tolerance: 9 * time.Hour}, {Key: "b", Interval: time.Hour, Tolerance: 9 * time.Hour}}
	for i := range 3 {
		if err := admin.ScriptFlush(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		outs, err := r.Take(context.Background(), time.Now(), b)
		if err != nil {
			t.Fatal(err)
		}
		for j, o := range outs {
			if want := 8 - i; !o.Allowed || o.Remaining != want {
				t.Errorf("take %d, bucket %d: allowed %v, %d remaining, want %d (each take counted once)", i, j, o.Allowed, o.Remaining, want)
			}
		}
	}
}
