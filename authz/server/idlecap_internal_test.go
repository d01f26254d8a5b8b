package server

import (
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestIdleCapChoosesTheIdlest: only idle connections, and new ones
// silent past idleNewGrace, may give way, the one idle the longest first;
// a connection behind TLS (the AuthZEN listener's) is tracked through it.
func TestIdleCapChoosesTheIdlest(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newIdleCap(nil, 4, nil)
	l.now = func() time.Time { return now }
	conn := func() *capConn {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		c := &capConn{Conn: a, l: l, state: http.StateNew, since: now}
		l.open[c] = struct{}{}
		return c
	}
	fresh, active, idleNew, idleOld := conn(), conn(), conn(), conn()
	l.track(active, http.StateActive)
	now = now.Add(time.Second)
	l.track(tls.Server(idleOld, &tls.Config{}), http.StateIdle) // through TLS
	now = now.Add(time.Second)
	l.track(idleNew, http.StateIdle)
	l.track(fresh, http.StateNew) // just accepted
	if got := l.idlest(); got != idleOld {
		t.Fatalf("idlest: %p, want the one idle the longest (%p)", got, idleOld)
	}
	idleOld.Close()
	idleNew.Close()
	if got := l.idlest(); got != nil {
		t.Fatalf("idlest with one active and one new within its grace: %p, want none", got)
	}
	now = now.Add(idleNewGrace)
	if got := l.idlest(); got != fresh {
		t.Fatalf("idlest: %p, want the new connection silent past its grace (%p)", got, fresh)
	}
	if len(l.open) != 2 {
		t.Errorf("%d open after two closed, want 2", len(l.open))
	}
}
