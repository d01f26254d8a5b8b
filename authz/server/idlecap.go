package server

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// idleCap caps an HTTP listener's open connections at max. Past it, a
// client waiting to connect takes the place of the connection idle the
// longest: one between requests (keep-alive, HTTP/2 with no stream open),
// or one accepted at least idleNewGrace ago that has not completed a
// request yet; a connection with a request under way is never closed for
// it. With none idle, the new connection waits (holding only its
// socket; the clients behind it wait in the kernel's accept queue) until
// one closes or goes idle.
//
// Before (netutil.LimitListener), max keep-alive connections that had
// each made one request held the listener for their idle timeout, and a
// new one waited that long: 260 idle connections kept the probe listener
// from answering a kubelet's /healthz (the session-12 outside attack).
//
// The http.Server's ConnState must be track (serve does both).
type idleCap struct {
	net.Listener
	max       int
	now       func() time.Time
	displaced func() // counts a connection closed for a new one (may be nil)

	mu    sync.Mutex
	open  map[*capConn]struct{}
	freed chan struct{} // a slot freed, or a connection went idle
	done  chan struct{} // the listener closed
	once  sync.Once
}

// idleNewGrace is how long a new connection may take to send its first
// request before it may be displaced.
const idleNewGrace = time.Second

func newIdleCap(l net.Listener, max int, displaced func()) *idleCap {
	return &idleCap{Listener: l, max: max, now: time.Now, displaced: displaced,
		open: map[*capConn]struct{}{}, freed: make(chan struct{}, 1), done: make(chan struct{})}
}

// serve serves hs on l, its ConnState tracked.
func (l *idleCap) serve(hs *http.Server) error {
	hs.ConnState = l.track
	return hs.Serve(l)
}

// capConn is one admitted connection: its HTTP state and since when.
type capConn struct {
	net.Conn
	l     *idleCap
	once  sync.Once
	state http.ConnState // guarded by l.mu
	since time.Time      // when it entered state
}

func (c *capConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.open, c)
		c.l.mu.Unlock()
		c.l.poke()
	})
	return err
}

func (l *idleCap) poke() {
	select {
	case l.freed <- struct{}{}:
	default:
	}
}

func (l *idleCap) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Accept accepts a connection first (so that a place is only made for a
// client that is there), then admits it.
func (l *idleCap) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	for {
		l.mu.Lock()
		if len(l.open) < l.max {
			cc := &capConn{Conn: c, l: l, state: http.StateNew, since: l.now()}
			l.open[cc] = struct{}{}
			l.mu.Unlock()
			return cc, nil
		}
		victim := l.idlest()
		l.mu.Unlock()
		if victim != nil {
			if l.displaced != nil {
				l.displaced()
			}
			victim.Close()
			continue
		}
		select {
		case <-l.freed:
		case <-time.After(idleNewGrace): // a new connection silent past its grace
		case <-l.done:
			c.Close()
			return nil, net.ErrClosed
		}
	}
}

// idlest is the connection idle the longest, nil when none may be
// displaced (l.mu held).
func (l *idleCap) idlest() *capConn {
	var best *capConn
	now := l.now()
	for c := range l.open {
		switch {
		case c.state == http.StateIdle:
		case c.state == http.StateNew && now.Sub(c.since) >= idleNewGrace:
		default:
			continue
		}
		if best == nil || c.since.Before(best.since) {
			best = c
		}
	}
	return best
}

// track is the http.Server's ConnState: it records each connection's
// state; one going idle may make room for a waiting client.
func (l *idleCap) track(c net.Conn, st http.ConnState) {
	for {
		if cc, ok := c.(*capConn); ok {
			l.mu.Lock()
			cc.state, cc.since = st, l.now()
			l.mu.Unlock()
			if st == http.StateIdle {
				l.poke()
			}
			return
		}
		u, ok := c.(interface{ NetConn() net.Conn }) // *tls.Conn
		if !ok {
			return
		}
		c = u.NetConn()
	}
}
