package server

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"

	"github.com/wardenauthz/warden/authz/admin"
)

// adminAuthTimeout is how long an admin connection may stay open without
// an authorized call (an admin API call the guard let through, a console
// API request with valid credentials and the grant it needs); then it is
// closed. A client that dialled early and calls later reconnects (grpc-go
// does so by itself; browsers too).
const adminAuthTimeout = 5 * time.Second

// adminAuthIdle is how long an authenticated connection keeps its slot
// against a new connection without an authorized call (and none under
// way): requests for the console's shell and assets, or refused ones, do
// not count.
const adminAuthIdle = time.Minute

// adminPerCaller bounds the authenticated connections of one console
// caller: one credential cannot take every slot.
const adminPerCaller = 16

// adminConns admits the admin listener's connections (at most max open).
// Its slots are taken before any caller is known, so an unauthenticated
// connection is never let to keep one: it is closed adminAuthTimeout after
// it was accepted unless it has made an authenticated call by then, and
// when all slots are taken a new connection closes the oldest
// unauthenticated one in its place, else the authenticated one longest
// idle past authIdle (no authorized call for that long, none under way).
// A new connection is refused only when every slot holds an authenticated
// connection in use. A console caller keeps at most perCaller connections
// authenticated; its others are treated as unauthenticated.
type adminConns struct {
	max         int
	authTimeout time.Duration
	authIdle    time.Duration
	perCaller   int
	now         func() time.Time
	onRefuse    func() // a new connection refused, or an old one displaced

	mu    sync.Mutex
	conns map[string]*adminConn // open, by remote address
}

func newAdminConns(max int, onRefuse func()) *adminConns {
	return &adminConns{max: max, authTimeout: adminAuthTimeout, authIdle: adminAuthIdle, perCaller: adminPerCaller, now: time.Now, onRefuse: onRefuse, conns: map[string]*adminConn{}}
}

// listen wraps l: its connections are admitted by a.
func (a *adminConns) listen(l net.Listener) net.Listener { return &adminListener{Listener: l, a: a} }

type adminListener struct {
	net.Listener
	a *adminConns
}

func (l *adminListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if ac := l.a.admit(c); ac != nil {
			return ac, nil
		}
	}
}

// admit tracks c, displacing the oldest unauthenticated connection when
// all slots are taken, else the authenticated one idle longest past
// authIdle; nil when every slot is authenticated and in use (c closed).
func (a *adminConns) admit(c net.Conn) *adminConn {
	now := a.now()
	ac := &adminConn{Conn: c, a: a, key: c.RemoteAddr().String(), at: now}
	var victim *adminConn
	a.mu.Lock()
	if len(a.conns) >= a.max {
		for _, o := range a.conns {
			if !o.authed && (victim == nil || o.at.Before(victim.at)) {
				victim = o
			}
		}
		if victim == nil {
			for _, o := range a.conns {
				if o.active == 0 && now.Sub(o.last) >= a.authIdle && (victim == nil || o.last.Before(victim.last)) {
					victim = o
				}
			}
		}
		if victim == nil {
			a.mu.Unlock()
			_ = c.Close()
			if a.onRefuse != nil {
				a.onRefuse()
			}
			return nil
		}
		delete(a.conns, victim.key)
	}
	a.conns[ac.key] = ac
	ac.timer = time.AfterFunc(a.authTimeout, ac.expire)
	a.mu.Unlock()
	if victim != nil {
		_ = victim.Close()
		if a.onRefuse != nil {
			a.onRefuse()
		}
	}
	return ac
}

// authorized marks the connection from remote (a peer's address) as
// making an authorized call by who (the guard's name for the caller; ""
// when not known): it keeps its slot while the call is under way and authIdle
// after. A caller past perCaller authenticated connections does not mark
// another (it closes authTimeout after it was accepted). done ends the
// call.
func (a *adminConns) authorized(remote, who string) (done func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ac := a.conns[remote]
	if ac == nil {
		return func() {}
	}
	if !ac.authed {
		if who != "" {
			n := 0
			for _, o := range a.conns {
				if o.authed && o.who == who {
					n++
				}
			}
			if n >= a.perCaller {
				return func() {}
			}
		}
		ac.authed, ac.who = true, who
		ac.timer.Stop()
	}
	ac.active++
	ac.last = a.now()
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		ac.active--
		ac.last = a.now()
	}
}

// unary marks the connection of every admin call the guard let through
// (chained after the guard's interceptor, it runs only for those), by
// its caller: one caller keeps at most perCaller connections
// authenticated, as a console caller does (before, a token allowed only
// QueryDecisions could hold all 64 connections with a call every 20 s and
// keep an operator's Revoke out: the session-12 outside attack).
func (a *adminConns) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		defer a.authorized(p.Addr.String(), admin.CallerOf(ctx))()
	}
	return h(ctx, req)
}

// httpAuthorized marks the connection of a console request whose caller
// authenticated and holds the grant it needs.
func (a *adminConns) httpAuthorized(r *http.Request, who string) (done func()) {
	return a.authorized(r.RemoteAddr, who)
}

// open counts the open connections, and those authenticated (tests).
func (a *adminConns) open() (all, authed int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.conns {
		if c.authed {
			authed++
		}
	}
	return len(a.conns), authed
}

// adminConn is an admitted connection; closing it gives its slot back.
type adminConn struct {
	net.Conn
	a     *adminConns
	key   string
	at    time.Time
	timer *time.Timer
	// Under a.mu: authenticated (by who), the
	// authorized calls under way, when the last one began or ended.
	authed bool
	who    string
	active int
	last   time.Time
	once   sync.Once
}

// expire closes the connection unless it authenticated in time.
func (c *adminConn) expire() {
	c.a.mu.Lock()
	authed := c.authed
	c.a.mu.Unlock()
	if !authed {
		_ = c.Close()
	}
}

func (c *adminConn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		c.a.mu.Lock()
		if c.a.conns[c.key] == c {
			delete(c.a.conns, c.key)
		}
		c.a.mu.Unlock()
		c.timer.Stop()
		err = c.Conn.Close()
	})
	return err
}
