package server

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/wardenauthz/warden/authz/config"
)

// maxHeaderListBytes bounds a gRPC request's HTTP/2 header block (its
// metadata; the CheckRequest itself is the message). grpc-go's default is
// 16 MiB; Envoy sends well under 8 KiB.
const maxHeaderListBytes = 64 << 10

// adminLimits are the admin listener's: server.grpc's timeouts and
// keepalive, and smaller caps (few callers), with longer streams (queries
// over the decision log). Its callers are authenticated only once a
// stream's message is read, so its buffers are bounded as tightly:
// (64 + 2 × 64) × 256 KiB = 48 MiB at most.
func adminLimits(g config.GRPC) config.GRPC {
	g.MaxConcurrentStreams = min(g.MaxConcurrentStreams, 16)
	g.MaxStreams = min(g.MaxStreams, 64)
	g.MaxConnections = min(g.MaxConnections, 64)
	g.MaxBufferedBytes = min(g.MaxBufferedBytes, 16<<20)
	g.ConnectionReserve = min(g.ConnectionReserve, 2)
	g.StreamTimeout = max(g.StreamTimeout, 30*time.Second)
	return g
}

// grpcLimits are the server options that bound what callers hold open on a
// gRPC listener (g: server.grpc, or adminLimits; maxRecv: the listener's
// largest message). Each stream counts against g.MaxStreams until it ends,
// and ends by g.StreamTimeout at the latest, data or not: a stream opened
// with HEADERS alone holds its slot (and goroutine) no longer than that.
//
// Bytes. A stream's client may send what HTTP/2 flow control allows before
// its message is complete: the stream window (64 KiB, static: grpc-go's
// BDP estimation, which a client steers with its PING answers, would raise
// it to 16 MiB for every stream) and, once grpc-go reads the 5-byte prefix,
// the whole declared message, up to maxRecv (grpc-go opens the window to
// it). So each stream is counted at config.StreamBytes(maxRecv), and no
// more than g.MaxBufferedBytes of them are open over all connections; past
// that, or past g.MaxStreams, a connection may still open
// g.ConnectionReserve streams of its own. What incomplete requests can
// hold is thus at most g.MaxIncompleteBytes(maxRecv):
//
//	(min(max_streams, max_buffered_bytes / S) + connection_reserve × max_connections) × S
//
// Answers. A call's answer the client does not read (its HTTP/2 windows
// closed) stays queued in grpc-go's writer after the handler returned:
// such held answers count against max_streams and the reserve as open
// streams do, and a connection holding one past stream_timeout is closed
// (h2track.go). The listener's connections are followed from behind creds
// (its TLS, nil for plaintext): grpcLimits installs them.
//
// onRefuse is told of each stream refused, onUnread of each connection
// closed for an answer left unread.
func grpcLimits(g config.GRPC, maxRecv int, creds credentials.TransportCredentials, onRefuse, onUnread func()) ([]grpc.ServerOption, *streamLimit) {
	streams := newStreamLimit(g, maxRecv, onRefuse, onUnread)
	return []grpc.ServerOption{
		grpc.Creds(trackCreds{inner: creds, l: streams}),
		grpc.MaxConcurrentStreams(uint32(g.MaxConcurrentStreams)),
		grpc.MaxHeaderListSize(maxHeaderListBytes),
		grpc.StaticStreamWindowSize(config.StreamWindow),
		// The connection window does not bound memory (grpc-go gives it
		// back as frames arrive, whatever the streams hold); 1 MiB keeps a
		// connection multiplexing many Checks from waiting on it.
		grpc.StaticConnWindowSize(1 << 20),
		grpc.ConnectionTimeout(g.ConnectionTimeout),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: g.KeepaliveMinTime, PermitWithoutStream: *g.KeepalivePermitWithoutStream}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time: g.KeepaliveTime, Timeout: g.KeepaliveTimeout,
			MaxConnectionIdle: g.MaxConnectionIdle, MaxConnectionAge: g.MaxConnectionAge, MaxConnectionAgeGrace: g.MaxConnectionAgeGrace,
		}),
		grpc.InTapHandle(streams.tap),
		grpc.ChainUnaryInterceptor(streams.handled),
		refuseCompressed,
	}, streams
}

// refuseCompressed refuses compressed messages (grpc-encoding gzip, the one
// compressor linked in, through a dependency): Envoy sends none, and a few
// KiB of gzip would make Warden inflate and read a max_recv_bytes message
// (a thousand times the client's cost). It overrides the registered gzip
// decompressor for this server only (grpc-go's one hook for that); any
// other encoding is refused by grpc-go as not installed.
//
//lint:ignore SA1019 RPCDecompressor is the only per-server override of a registered decompressor
var refuseCompressed = grpc.RPCDecompressor(noDecompressor{})

type noDecompressor struct{}

func (noDecompressor) Do(io.Reader) ([]byte, error) {
	return nil, errors.New("compressed messages are not accepted")
}

func (noDecompressor) Type() string { return "gzip" }

// adminMaxRecv bounds an admin request (a query, a revocation: small).
const adminMaxRecv = 256 << 10

// limitListener bounds l to g.MaxConnections open connections.
func limitListener(l net.Listener, g config.GRPC) net.Listener {
	return netutil.LimitListener(l, g.MaxConnections)
}

// streamLimit counts the streams open over all connections and on each,
// and gives each stream a deadline.
//
// Held answers (h2track.go) count as open streams: held, over all
// connections, and each connection's own (h2conn.heldCount).
type streamLimit struct {
	max       int // shared by all connections
	reserve   int // a connection's own, past max
	timeout   time.Duration
	maxHeld   int // a connection's held answers past which it is closed
	resetRing int // reset streams a connection remembers (streamTracker)
	onRefuse  func()
	onUnread  func()

	held      atomic.Int64 // answers held over all connections
	answering atomic.Int64 // answers on their way over all connections (h2conn.answered)
	pending   atomic.Int64 // answers reset by their client, maybe still queued (h2conn.pend)

	mu       sync.Mutex
	open     int
	byConn   map[any]int     // open streams by connection (connKey)
	conns    map[any]*h2conn // the connections, by connKey
	sweeping bool            // the sweeper is scheduled
}

// trackSlack is how many more streams than max_concurrent_streams a
// connection's tracker allows for: grpc-go keeps a stream whose answer is
// queued among the connection's open streams, so more held answers mean a
// tracking error (the connection is closed); as many reset streams are
// remembered (at most 1,024 more: the ring is searched for every answer
// not written whole at once).
const trackSlack = 64

func newStreamLimit(g config.GRPC, maxRecv int, onRefuse, onUnread func()) *streamLimit {
	return &streamLimit{max: g.SharedStreams(maxRecv), reserve: g.ConnectionReserve, timeout: g.StreamTimeout,
		maxHeld: g.MaxConcurrentStreams + trackSlack, resetRing: min(g.MaxConcurrentStreams, 1024) + trackSlack,
		onRefuse: onRefuse, onUnread: onUnread, byConn: map[any]int{}, conns: map[any]*h2conn{}}
}

var errBusy = status.Error(codes.Unavailable, "warden: too many streams open; retry")

// connKey names a stream's connection: its remote address, which grpc-go
// gives every stream of a connection as the same net.Addr (for TCP, the
// same *net.TCPAddr: its pointer, without formatting it per stream).
// (h2conn and TLS keep the accepted connection's RemoteAddr.)
func connKey(ctx context.Context) any {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return ""
	}
	return addrKey(p.Addr)
}

func addrKey(a net.Addr) any {
	switch {
	case a == nil:
		return ""
	case isTCP(a):
		return a
	}
	return a.String()
}

func isTCP(a net.Addr) bool { _, ok := a.(*net.TCPAddr); return ok }

// counts are the streams open and the answers held or on their way
// (tests).
func (l *streamLimit) counts() (open, held int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open, int(l.held.Load() + l.answering.Load() + l.pending.Load())
}

// tap runs for each new stream before its handler goroutine starts (under
// the transport's lock: it must not block). Past the shared streams
// (running calls, held answers and answers on their way, over all
// connections), a connection may still open its reserve (the same, its
// own).
func (l *streamLimit) tap(ctx context.Context, _ *tap.Info) (context.Context, error) {
	conn := connKey(ctx)
	l.mu.Lock()
	var connHeld int
	if c := l.conns[conn]; c != nil {
		connHeld = int(c.heldCount.Load()) + c.onTheWay() + int(c.pending.Load())
	}
	if l.open+int(l.held.Load()+l.answering.Load()+l.pending.Load()) >= l.max && l.byConn[conn]+connHeld >= l.reserve {
		l.mu.Unlock()
		if l.onRefuse != nil {
			l.onRefuse()
		}
		return nil, errBusy
	}
	l.open++
	l.byConn[conn]++
	l.mu.Unlock()
	// The slot is given back when the call's handler returns (its request
	// was read whole: nothing of it is buffered any more), or when the
	// stream's context ends first: with the stream (grpc-go cancels it,
	// e.g. a client that never finishes its request) or at the deadline,
	// which ends the stream. The timer goes with the parent's cancellation.
	// (Only from the context, the slot came back late under load: the
	// callback runs on a goroutine of its own, after the client may
	// already have sent its next request.)
	// handled, giving the slot back, also stops the callback: it would only
	// release the slot again, and cancel what the stream's end cancels
	// (grpc-go cancels a stream's context when it ends, and with it this
	// one and its timer), on a goroutine of its own per call.
	// A stream whose deadline (grpc-timeout: Envoy sends one with every
	// Check) comes before stream_timeout needs no context of its own:
	// context.WithTimeout would give it one only to be cancelled with the
	// stream's, with the same deadline.
	sl := &slot{l: l, conn: conn}
	ctx = context.WithValue(ctx, slotKey{}, sl)
	if d, ok := ctx.Deadline(); ok && d.Before(time.Now().Add(l.timeout)) {
		sl.stop = context.AfterFunc(ctx, sl.release)
		return ctx, nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	sl.stop = context.AfterFunc(ctx, func() {
		cancel()
		sl.release()
	})
	return ctx, nil
}

// slot is one stream's place in the count, given back once.
type slot struct {
	l    *streamLimit
	conn any
	done atomic.Bool
	stop func() bool // stops the callback that releases it at the context's end
}

type slotKey struct{}

func (s *slot) release() { s.giveBack(false) }

// giveBack gives the slot back, once; with answered, the call's answer
// is on its way, counted on its connection until written (h2conn.answered).
func (s *slot) giveBack(answered bool) {
	if !s.done.CompareAndSwap(false, true) {
		return
	}
	l := s.l
	l.mu.Lock()
	l.open--
	if l.byConn[s.conn]--; l.byConn[s.conn] == 0 {
		delete(l.byConn, s.conn)
	}
	if c := l.conns[s.conn]; answered && c != nil {
		c.answered()
	}
	l.mu.Unlock()
}

// handled gives a unary call's slot back as its handler returns; an
// answer (not an error: grpc-go writes that as trailers alone) on a
// stream still open (not reset by the client, whose context grpc-go then
// cancels: nothing more is written) stays counted until grpc-go writes it.
func (l *streamLimit) handled(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	if s, ok := ctx.Value(slotKey{}).(*slot); ok {
		s.giveBack(err == nil && ctx.Err() == nil)
		s.stop()
	}
	return resp, err
}
