package server

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
)

// adminAuthTimeout is how long an admin connection may stay open without
// an authenticated call (an admin API call the guard let through, a
// console API request with valid credentials); then it is closed. A
// client that dialled early and calls later reconnects (grpc-go does so by
// itself; browsers too).
const adminAuthTimeout = 5 * time.Second

// adminConns admits the admin listener's connections (at most max open).
// Its slots are taken before any caller is known, so an unauthenticated
// connection is never let to keep one: it is closed adminAuthTimeout after
// it was accepted unless it has made an authenticated call by then, and
// when all slots are taken a new connection closes the oldest
// unauthenticated one in its place. Only authenticated connections are
// never displaced: a new connection is refused only when every slot
// holds one.
type adminConns struct {
	max         int
	authTimeout time.Duration
	now         func() time.Time
	onRefuse    func() // a new connection refused, or an old one displaced

	mu    sync.Mutex
	conns map[string]*adminConn // open, by remote address
}

func newAdminConns(max int, onRefuse func()) *adminConns {
	return &adminConns{max: max, authTimeout: adminAuthTimeout, now: time.Now, onRefuse: onRefuse, conns: map[string]*adminConn{}}
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
// all slots are taken; nil when every slot is authenticated (c closed).
func (a *adminConns) admit(c net.Conn) *adminConn {
	ac := &adminConn{Conn: c, a: a, key: c.RemoteAddr().String(), at: a.now()}
	var victim *adminConn
	a.mu.Lock()
	if len(a.conns) >= a.max {
		for _, o := range a.conns {
			if !o.authed && (victim == nil || o.at.Before(victim.at)) {
				victim = o
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

// authenticated marks the connection from remote (a peer's address) as
// having made an authenticated call: it keeps its slot.
func (a *adminConns) authenticated(remote string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ac := a.conns[remote]; ac != nil && !ac.authed {
		ac.authed = true
		ac.timer.Stop()
	}
}

// unary marks the connection of every admin call the guard let through
// (chained after the guard's interceptor, it runs only for those).
func (a *adminConns) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		a.authenticated(p.Addr.String())
	}
	return h(ctx, req)
}

// httpAuthenticated marks the connection of a console request whose
// caller authenticated.
func (a *adminConns) httpAuthenticated(r *http.Request) { a.authenticated(r.RemoteAddr) }

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
	a      *adminConns
	key    string
	at     time.Time
	timer  *time.Timer
	authed bool // under a.mu
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
