package ratelimit_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenauthz/warden/internal/testwait"
	"github.com/wardenauthz/warden/ratelimit"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

// TestUnrevokeMemory: an unrevoked jti or subject is let in again; the
// others stay revoked; an unknown kind is an error.
func TestUnrevokeMemory(t *testing.T) {
	ctx, now := context.Background(), time.Now()
	m := ratelimit.NewMemory()
	for _, r := range []ratelimit.Revocation{
		{Kind: ratelimit.RevokeJTI, ID: "j1", Until: now.Add(time.Hour)},
		{Kind: ratelimit.RevokeJTI, ID: "j2", Until: now.Add(time.Hour)},
		{Kind: ratelimit.RevokeSubject, ID: "corp|bob", Before: now},
	} {
		if err := m.Revoke(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Unrevoke(ctx, ratelimit.RevokeJTI, "j1"); err != nil {
		t.Fatal(err)
	}
	if err := m.Unrevoke(ctx, ratelimit.RevokeSubject, "corp|bob"); err != nil {
		t.Fatal(err)
	}
	if err := m.Unrevoke(ctx, "nope", "j2"); err == nil {
		t.Error("unknown kind: no error")
	}
	old := now.Add(-time.Minute)
	for _, tc := range []struct {
		sub, jti string
		want     bool
	}{{"corp|alice", "j1", false}, {"corp|alice", "j2", true}, {"corp|bob", "", false}} {
		if got, err := m.Revoked(ctx, tc.sub, tc.jti, old); err != nil || got != tc.want {
			t.Errorf("Revoked(%s, %s) = %v %v, want %v", tc.sub, tc.jti, got, err, tc.want)
		}
	}
	if rs, _ := m.List(ctx, now); len(rs) != 1 || rs[0].ID != "j2" {
		t.Errorf("List = %+v, want j2 only", rs)
	}
}

// TestUnrevokeReplicas: two replicas on one redis-server. A revoke on A is
// seen on B; an unrevoke on A is seen on B at once (pub/sub), and, when B
// missed the message, at B's next resync (by the tombstone Unrevoke left);
// a key Redis merely lost (a restart without persistence) is kept; a revoke
// that arrives while a resync scans is kept, even over an older tombstone.
func TestUnrevokeReplicas(t *testing.T) {
	srv := redistest.Start(t)
	ctx, now := context.Background(), time.Now()
	a := newRedis(t, srv, time.Minute)
	// b's resync can be made to wait, after its scan, for a revoke.
	var duringScan atomic.Pointer[func()]
	o := ratelimit.RedisOptions{MaxStaleness: time.Minute, Timeout: 200 * time.Millisecond}
	b := ratelimit.NewRedis(ratelimit.NewRedisClient(&redis.UniversalOptions{Addrs: []string{srv.Addr}}, o.Timeout), o)
	ratelimit.SetAfterScan(b, func() {
		if f := duringScan.Swap(nil); f != nil {
			(*f)()
		}
	})
	bctx, cancel := context.WithCancel(ctx)
	t.Cleanup(func() { cancel(); b.Close() })
	b.Start(bctx)
	revokedOn := func(s *ratelimit.Redis, sub, jti string) bool {
		ok, err := s.Revoked(ctx, sub, jti, now.Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	if err := a.Revoke(ctx, ratelimit.Revocation{Kind: ratelimit.RevokeJTI, ID: "j1", Until: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := a.Revoke(ctx, ratelimit.Revocation{Kind: ratelimit.RevokeSubject, ID: "corp|bob", Before: now}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 2*time.Second, "revocations on a not seen on b", func() bool {
		return revokedOn(b, "corp|x", "j1") && revokedOn(b, "corp|bob", "")
	})

	// Pub/sub: the unrevoke reaches b without a resync.
	if err := a.Unrevoke(ctx, ratelimit.RevokeJTI, "j1"); err != nil {
		t.Fatal(err)
	}
	if revokedOn(a, "corp|x", "j1") {
		t.Error("a still revokes j1 after its own unrevoke")
	}
	testwait.Until(t, 2*time.Second, "unrevoke on a not seen on b", func() bool { return !revokedOn(b, "corp|x", "j1") })

	// j2 was revoked and unrevoked before: its tombstone is in Redis.
	if err := a.Revoke(ctx, ratelimit.Revocation{Kind: ratelimit.RevokeJTI, ID: "j2", Until: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 2*time.Second, "j2 not seen on b", func() bool { return revokedOn(b, "corp|x", "j2") })
	if err := a.Unrevoke(ctx, ratelimit.RevokeJTI, "j2"); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 2*time.Second, "j2's unrevoke not seen on b", func() bool { return !revokedOn(b, "corp|x", "j2") })

	// Missed message: what Unrevoke writes (the key deleted, a tombstone)
	// happens behind b's back; b's resync drops it (the old merge kept it
	// for ever). A key merely lost from Redis (j3) is kept.
	if err := a.Revoke(ctx, ratelimit.Revocation{Kind: ratelimit.RevokeJTI, ID: "j3", Until: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 2*time.Second, "j3 not seen on b", func() bool { return revokedOn(b, "corp|x", "j3") })
	raw := ratelimit.NewRedisClient(&redis.UniversalOptions{Addrs: []string{srv.Addr}}, time.Second)
	defer raw.Close()
	if err := raw.Del(ctx, "warden:rev:sub:{corp|bob}", "warden:rev:jti:{j3}").Err(); err != nil {
		t.Fatal(err)
	}
	if err := raw.Set(ctx, "warden:rev:del:sub:{corp|bob}", "1", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if !revokedOn(b, "corp|bob", "") {
		t.Fatal("b dropped corp|bob before any message or resync")
	}
	// A revoke that lands after the scan (seen by b through pub/sub only;
	// the scan saw j2's old tombstone) must survive the same resync.
	f := func() {
		if err := a.Revoke(ctx, ratelimit.Revocation{Kind: ratelimit.RevokeJTI, ID: "j2", Until: now.Add(time.Hour)}); err != nil {
			t.Error(err)
			return
		}
		testwait.Until(t, 2*time.Second, "revoke during b's resync not delivered", func() bool { return revokedOn(b, "corp|x", "j2") })
	}
	duringScan.Store(&f)
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if duringScan.Load() != nil {
		t.Fatal("the resync hook did not run")
	}
	if revokedOn(b, "corp|bob", "") {
		t.Error("b still revokes corp|bob after a resync; Redis no longer holds it")
	}
	if !revokedOn(b, "corp|x", "j2") {
		t.Error("b lost j2, revoked during its resync's scan")
	}
	if !revokedOn(b, "corp|x", "j3") {
		t.Error("b dropped j3, which Redis lost without an unrevoke")
	}
	if rs, err := b.List(ctx, time.Now()); err != nil || len(rs) != 2 || rs[0].ID != "j2" || rs[1].ID != "j3" {
		t.Errorf("b.List = %+v %v, want j2, j3", rs, err)
	}

	// An earlier cut-off must not shorten a subject's revocation.
	later := now.Add(time.Minute)
	for _, before := range []time.Time{later, now} {
		if err := a.Revoke(ctx, ratelimit.Revocation{Kind: ratelimit.RevokeSubject, ID: "corp|eve", Before: before}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := b.Revoked(ctx, "corp|eve", "", now.Add(time.Second)); !ok {
		t.Error("corp|eve's later cut-off was shortened by an earlier one")
	}
}
