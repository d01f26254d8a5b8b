package server

import (
	"context"
	"net"
	"sync"
	"time"

	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
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
// over the decision log).
func adminLimits(g config.GRPC) config.GRPC {
	g.MaxConcurrentStreams = min(g.MaxConcurrentStreams, 16)
	g.MaxStreams = min(g.MaxStreams, 64)
	g.MaxConnections = min(g.MaxConnections, 64)
	g.StreamTimeout = max(g.StreamTimeout, 30*time.Second)
	return g
}

// grpcLimits are the server options that bound what callers hold open on a
// gRPC listener (g: server.grpc, or adminLimits). Each stream counts against
// g.MaxStreams until it ends, and ends by g.StreamTimeout at the latest,
// data or not: a stream opened with HEADERS alone holds its slot (and
// goroutine) no longer than that. Past g.MaxStreams a connection may still
// open connReserve streams of its own. onRefuse is told of each stream
// refused.
func grpcLimits(g config.GRPC, onRefuse func()) []grpc.ServerOption {
	streams := &streamLimit{max: g.MaxStreams, timeout: g.StreamTimeout, onRefuse: onRefuse, byConn: map[string]int{}}
	return []grpc.ServerOption{
		grpc.MaxConcurrentStreams(uint32(g.MaxConcurrentStreams)),
		grpc.MaxHeaderListSize(maxHeaderListBytes),
		grpc.ConnectionTimeout(g.ConnectionTimeout),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: g.KeepaliveMinTime, PermitWithoutStream: *g.KeepalivePermitWithoutStream}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time: g.KeepaliveTime, Timeout: g.KeepaliveTimeout,
			MaxConnectionIdle: g.MaxConnectionIdle, MaxConnectionAge: g.MaxConnectionAge, MaxConnectionAgeGrace: g.MaxConnectionAgeGrace,
		}),
		grpc.InTapHandle(streams.tap),
	}
}

// limitListener bounds l to g.MaxConnections open connections.
func limitListener(l net.Listener, g config.GRPC) net.Listener {
	return netutil.LimitListener(l, g.MaxConnections)
}

// connReserve is how many streams a connection may open even when
// max_streams are open: a flood on other connections cannot starve a
// connection that keeps few streams open (Envoy's), while the total stays
// bounded by max_streams + max_connections × connReserve.
const connReserve = 8

// streamLimit counts the streams open over all connections and on each,
// and gives each stream a deadline.
type streamLimit struct {
	max      int
	timeout  time.Duration
	onRefuse func()

	mu     sync.Mutex
	open   int
	byConn map[string]int // open streams by the connection's remote address
}

var errBusy = status.Error(codes.Unavailable, "warden: too many streams open; retry")

// tap runs for each new stream before its handler goroutine starts (under
// the transport's lock: it must not block).
func (l *streamLimit) tap(ctx context.Context, _ *tap.Info) (context.Context, error) {
	conn := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		conn = p.Addr.String()
	}
	l.mu.Lock()
	if l.open >= l.max && l.byConn[conn] >= connReserve {
		l.mu.Unlock()
		if l.onRefuse != nil {
			l.onRefuse()
		}
		return nil, errBusy
	}
	l.open++
	l.byConn[conn]++
	l.mu.Unlock()
	// The stream's context ends with the stream (grpc-go cancels it), or
	// at the deadline, which ends the stream; either way the slot is
	// given back. The timer goes with the parent's cancellation.
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	context.AfterFunc(ctx, func() {
		cancel()
		l.mu.Lock()
		l.open--
		if l.byConn[conn]--; l.byConn[conn] == 0 {
			delete(l.byConn, conn)
		}
		l.mu.Unlock()
	})
	return ctx, nil
}
