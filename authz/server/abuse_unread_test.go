package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/internal/abusetest"
	"github.com/wardenauthz/warden/internal/testpki"
	"github.com/wardenauthz/warden/internal/testwait"
)

// unreadClient is a raw HTTP/2 client that sends complete Check requests
// and never reads their answers' bodies: it advertises a stream window of
// window bytes and never sends WINDOW_UPDATE, while it answers SETTINGS
// and PINGs (the session-9 outside attack, SECURITY.md row 24). It records
// what the server sent per stream.
type unreadClient struct {
	conn net.Conn
	fr   *http2.Framer
	wmu  sync.Mutex
	next uint32
	enc  *hpack.Encoder
	hb   bytes.Buffer

	mu       sync.Mutex
	begun    map[uint32]time.Time // response HEADERS without END_STREAM
	status   map[uint32]string    // grpc-status of the streams the server ended with trailers
	resets   map[uint32]http2.ErrCode
	data     int // DATA bytes received
	pings    int // PING acks received
	closedAt time.Time
	closed   chan struct{}
}

func dialUnread(t *testing.T, c net.Conn, window uint32) *unreadClient {
	t.Helper()
	u := &unreadClient{conn: c, fr: http2.NewFramer(c, c), next: 1, begun: map[uint32]time.Time{}, status: map[uint32]string{},
		resets: map[uint32]http2.ErrCode{}, closed: make(chan struct{})}
	u.enc = hpack.NewEncoder(&u.hb)
	u.fr.ReadMetaHeaders = hpack.NewDecoder(64<<10, nil)
	u.fr.MaxHeaderListSize = 1 << 20
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	if err := u.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: window}); err != nil {
		t.Fatal(err)
	}
	go u.read()
	t.Cleanup(func() { c.Close(); <-u.closed })
	return u
}

func dialUnreadTCP(t *testing.T, addr string, window uint32) *unreadClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return dialUnread(t, c, window)
}

// unreadTLS is a server certificate for a listener's TLS, and the client
// config that trusts it (h2).
func unreadTLS(t *testing.T) (config.TLS, *tls.Config) {
	t.Helper()
	ca := testpki.NewCA(t, "ca")
	srv := ca.Server(t, "warden")
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(pem)
	return config.TLS{CertFile: srv.CertFile, KeyFile: srv.KeyFile}, &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"h2"}}
}

// unreadDialer dials unread clients to addr, over TLS with tc unless it
// is nil.
func unreadDialer(t *testing.T, addr string, tc *tls.Config) func(window uint32) *unreadClient {
	return func(window uint32) *unreadClient {
		if tc == nil {
			return dialUnreadTCP(t, addr, window)
		}
		c, err := tls.Dial("tcp", addr, tc)
		if err != nil {
			t.Fatal(err)
		}
		return dialUnread(t, c, window)
	}
}

func (u *unreadClient) read() {
	defer func() {
		u.mu.Lock()
		u.closedAt = time.Now()
		u.mu.Unlock()
		close(u.closed)
	}()
	for {
		f, err := u.fr.ReadFrame()
		if err != nil {
			return
		}
		u.mu.Lock()
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				u.wmu.Lock()
				_ = u.fr.WriteSettingsAck()
				u.wmu.Unlock()
			}
		case *http2.PingFrame:
			if f.IsAck() {
				u.pings++
			} else {
				u.wmu.Lock()
				_ = u.fr.WritePing(true, f.Data)
				u.wmu.Unlock()
			}
		case *http2.MetaHeadersFrame:
			if f.StreamEnded() {
				u.status[f.StreamID] = headerValue(f, "grpc-status")
			} else {
				u.begun[f.StreamID] = time.Now()
			}
		case *http2.DataFrame:
			u.data += len(f.Data())
		case *http2.RSTStreamFrame:
			u.resets[f.StreamID] = f.ErrCode
		}
		u.mu.Unlock()
	}
}

func headerValue(f *http2.MetaHeadersFrame, name string) string {
	for _, h := range f.Fields {
		if h.Name == name {
			return h.Value
		}
	}
	return ""
}

// open writes a Check stream's HEADERS, and its message (gRPC-framed, in
// DATA frames of at most 16 KiB, the last one ending the stream) unless msg
// is nil; it returns the stream's id.
func (u *unreadClient) open(t *testing.T, msg []byte) uint32 {
	t.Helper()
	return u.call(t, "/envoy.service.auth.v3.Authorization/Check", "", msg)
}

// call opens a stream of method, with an authorization header unless
// auth is empty (see open).
func (u *unreadClient) call(t *testing.T, method, auth string, msg []byte) uint32 {
	t.Helper()
	id, err := u.send(method, auth, msg)
	if err != nil {
		t.Fatalf("stream %d: %v", id, err)
	}
	return id
}

// send is call, its write error returned (for a goroutine other than the
// test's).
func (u *unreadClient) send(method, auth string, msg []byte) (uint32, error) {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	id := u.next
	u.next += 2
	u.hb.Reset()
	fields := [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":path", method},
		{":authority", "warden"}, {"content-type", "application/grpc"}, {"te", "trailers"},
	}
	if auth != "" {
		fields = append(fields, [2]string{"authorization", auth})
	}
	for _, h := range fields {
		_ = u.enc.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]})
	}
	if err := u.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: u.hb.Bytes(), EndHeaders: true}); err != nil {
		return id, err
	}
	if msg == nil {
		return id, nil
	}
	body := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))
	body = append(body, msg...)
	for len(body) > 0 {
		n := min(len(body), 16<<10)
		if err := u.fr.WriteData(id, n == len(body), body[:n]); err != nil {
			return id, err
		}
		body = body[n:]
	}
	return id, nil
}

func (u *unreadClient) reset(t *testing.T, id uint32) {
	t.Helper()
	u.wmu.Lock()
	defer u.wmu.Unlock()
	if err := u.fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
}

func (u *unreadClient) ping(t *testing.T) {
	t.Helper()
	u.wmu.Lock()
	err := u.fr.WritePing(false, [8]byte{1})
	u.wmu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
}

func (u *unreadClient) counts() (begun, ended, data, pings int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	ended = len(u.status)
	for id := range u.resets {
		if _, ok := u.status[id]; !ok {
			ended++
		}
	}
	return len(u.begun), ended, u.data, u.pings
}

func (u *unreadClient) statusOf(id uint32) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.status[id]
}

func (u *unreadClient) isClosed() bool {
	select {
	case <-u.closed:
		return true
	default:
		return false
	}
}

// largeAnswer is a Check request whose (allow) answer is large: 40
// spoofed identity headers of about 300 bytes each, all named back in
// headers_to_remove (about 13 KB); its gRPC message.
func largeAnswer(t *testing.T, e *env) (*authv3.CheckRequest, []byte) {
	t.Helper()
	return spoofedAnswer(t, e, 40, 300)
}

// spoofedAnswer is a Check request (and its gRPC message) with n spoofed
// identity headers whose names are about size bytes long, all named back
// in its allow's headers_to_remove.
func spoofedAnswer(t *testing.T, e *env, n, size int) (*authv3.CheckRequest, []byte) {
	t.Helper()
	req := sample(t, "01-get-bearer-jwt.json", e.token(t, "alice", "staff"))
	h := req.Attributes.Request.Http.Headers
	for i := range n {
		h[fmt.Sprintf("x-warden-spoof-%02d-%s", i, strings.Repeat("a", size))] = "1"
	}
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return req, b
}

// checkLarge checks that req's answer, over client, is the large allow.
func checkLarge(t *testing.T, client authv3.AuthorizationClient, req *authv3.CheckRequest) {
	t.Helper()
	resp, err := client.Check(context.Background(), req)
	if err != nil || resp.GetStatus().GetCode() != 0 {
		t.Fatalf("the large answer's Check: %v %v", resp.GetStatus(), err)
	}
	if n := proto.Size(resp); n < 12_000 || len(resp.GetOkResponse().GetHeadersToRemove()) < 40 {
		t.Fatalf("answer of %d bytes, %d headers to remove: not the large answer wanted", n, len(resp.GetOkResponse().GetHeadersToRemove()))
	}
}

func waitCounts(t *testing.T, e *env, what string, open, held int) {
	t.Helper()
	testwait.Until(t, 5*time.Second, what, func() bool {
		o, h := server.GRPCStreams(e.svc)
		return o == open && h == held
	})
}

// unreadLimits: 8 streams a connection, 4 in all (max_buffered_bytes of
// four 256 KiB streams), a reserve of 1.
func unreadLimits(timeout time.Duration) func(*config.Config) {
	return func(c *config.Config) {
		c.Server.GRPC.MaxConcurrentStreams = 8
		c.Server.GRPC.MaxStreams = 8
		c.Server.MaxRecvBytes = 256 << 10
		c.Server.GRPC.MaxBufferedBytes = 4 * config.StreamBytes(256<<10)
		c.Server.GRPC.ConnectionReserve = 1
		c.Server.GRPC.StreamTimeout = timeout
	}
}

const unreadMetric = `warden_grpc_connections_closed_unread_total{listener="grpc"}`

// TestUnreadAnswersHeld: answers the client will not read (stream window
// 0, no WINDOW_UPDATE, pings answered) count against max_streams while
// they wait (their connection has no reserve left, another gets its
// reserve and no more: UNAVAILABLE),
// and the connection is closed after stream_timeout, within two sweeps
// more; every count comes back. Before, the answers waited in grpc-go's
// write queue outside max_streams for as long as the connection lived
// (2,048 of 50 KB: +250 MB). Over plaintext and TLS (the frames are
// followed behind the handshake).
func TestUnreadAnswersHeld(t *testing.T) {
	for _, withTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "plaintext", true: "tls"}[withTLS], func(t *testing.T) {
			const timeout = 400 * time.Millisecond
			mutate := []func(*config.Config){unreadLimits(timeout)}
			var tc *tls.Config
			if withTLS {
				var srv config.TLS
				srv, tc = unreadTLS(t)
				mutate = append(mutate, func(c *config.Config) { c.Server.TLS = srv })
			}
			e := start(t, mutate...)
			dial := unreadDialer(t, e.addr, tc)
			req, msg := largeAnswer(t, e)
			client := e.client
			if tc != nil {
				conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				client = authv3.NewAuthorizationClient(conn)
			}
			checkLarge(t, client, req)

			u := dial(0)
			for range 4 {
				u.open(t, msg)
			}
			testwait.Until(t, 5*time.Second, "4 answers begun", func() bool { b, _, _, _ := u.counts(); return b == 4 })
			waitCounts(t, e, "4 answers held, no stream open", 0, 4)
			if _, ended, data, _ := u.counts(); ended != 0 || data != 0 {
				t.Fatalf("%d streams ended, %d bytes of DATA read: want none (window 0)", ended, data)
			}
			// The shared streams are taken by the held answers, and the
			// connection's reserve by its own.
			fifth := u.open(t, msg)
			testwait.Until(t, 5*time.Second, "the fifth Check answered", func() bool { return u.statusOf(fifth) != "" })
			if s := u.statusOf(fifth); s != fmt.Sprint(int(codes.Unavailable)) {
				t.Errorf("a Check past the held answers on their connection: grpc-status %s, want UNAVAILABLE", s)
			}
			u.mu.Lock()
			var first time.Time
			for _, at := range u.begun {
				if first.IsZero() || at.Before(first) {
					first = at
				}
			}
			u.mu.Unlock()

			// Another connection opens its reserve's one stream and is
			// refused the next.
			p := dial(65535)
			one := p.open(t, nil)
			two := p.open(t, nil)
			testwait.Until(t, 5*time.Second, "the stream past the reserve refused", func() bool { return p.statusOf(two) != "" })
			if s := p.statusOf(two); s != fmt.Sprint(int(codes.Unavailable)) {
				t.Errorf("the stream past the reserve: grpc-status %s, want UNAVAILABLE", s)
			}
			if s := p.statusOf(one); s != "" && !u.isClosed() {
				t.Errorf("the reserve's stream ended (%s) while the answers were held", s)
			}

			// The connection is closed by stream_timeout and two sweeps (a
			// quarter of it each).
			select {
			case <-u.closed:
			case <-time.After(timeout*3/2 + 5*time.Second):
				t.Fatal("the connection holding unread answers is still open")
			}
			u.mu.Lock()
			held := u.closedAt.Sub(first)
			u.mu.Unlock()
			t.Logf("closed %v after the first answer began (stream_timeout %v)", held, timeout)
			if held < timeout {
				t.Errorf("closed %v after the first answer began: before stream_timeout (%v)", held, timeout)
			}
			if held > timeout*3/2+time.Second {
				t.Errorf("closed %v after the first answer began: want within stream_timeout (%v) and two sweeps", held, timeout)
			}
			p.conn.Close()
			waitCounts(t, e, "every count back", 0, 0)
			if n := metricValue(t, e.http, unreadMetric); n != 1 {
				t.Errorf("%s = %v, want 1", unreadMetric, n)
			}
			checkLarge(t, client, req)
		})
	}
}

// TestUnreadAnswersReset: the client's RST_STREAM on its held answers
// (Envoy resets a stream whose timeout fired) gives their counts back once
// a stream opened after the resets writes HEADERS, and the connection
// stays open past stream_timeout; closing the connection gives every
// count back too.
func TestUnreadAnswersReset(t *testing.T) {
	const timeout = 300 * time.Millisecond
	e := start(t, unreadLimits(timeout))
	_, msg := largeAnswer(t, e)
	u := dialUnreadTCP(t, e.addr, 0)
	var ids []uint32
	for range 4 {
		ids = append(ids, u.open(t, msg))
	}
	testwait.Until(t, 5*time.Second, "4 answers begun", func() bool { b, _, _, _ := u.counts(); return b == 4 })
	waitCounts(t, e, "4 answers held", 0, 4)
	at := time.Now()
	for _, id := range ids {
		u.reset(t, id)
	}
	// A reset answer counts until a stream opened after the reset writes
	// HEADERS (its bytes may still wait in gRPC's queue until then): a
	// call of a method Warden does not serve, answered by trailers alone.
	waitCounts(t, e, "the reset answers pending", 0, 4)
	u.call(t, "/warden.test.v1.None/None", "", msg)
	waitCounts(t, e, "the reset answers given back", 0, 0)
	if d := time.Since(at); d >= timeout {
		t.Errorf("counts back %v after the resets: not before stream_timeout (%v)", d, timeout)
	}
	// Nothing of the connection is held: it outlives stream_timeout.
	time.Sleep(2 * timeout)
	u.ping(t)
	testwait.Until(t, 5*time.Second, "the ping answered", func() bool { _, _, _, p := u.counts(); return p == 1 })
	if u.isClosed() {
		t.Fatal("the connection was closed though the client reset its held answers")
	}

	// Held again, then the client hangs up.
	for range 4 {
		u.open(t, msg)
	}
	testwait.Until(t, 5*time.Second, "4 more answers begun", func() bool { b, _, _, _ := u.counts(); return b == 8 })
	waitCounts(t, e, "4 answers held again", 0, 4)
	u.conn.Close()
	waitCounts(t, e, "the closed connection's answers given back", 0, 0)
	if n := metricValue(t, e.http, unreadMetric); n > 0 {
		t.Errorf("%s = %v, want 0", unreadMetric, n)
	}
}

// holdAnswers opens 4 Checks on u (its windows closed) and waits until
// their answers are held (the limits' 4 shared streams).
func holdAnswers(t *testing.T, e *env, u *unreadClient, msg []byte, what string) []uint32 {
	t.Helper()
	var ids []uint32
	for range 4 {
		ids = append(ids, u.open(t, msg))
	}
	waitCounts(t, e, what+"4 answers held", 0, 4)
	return ids
}

// TestResetAnswersIdleGivenBack: a client that resets its held answers
// and then opens no stream (nothing more is written on its connection)
// has their pending counts given back once gRPC's writer has been quiet
// for a sweep's grace; the connection is not closed. Before, they stayed
// counted until the connection closed (max_connection_idle: 5 minutes),
// holding the shared streams with none open (the session-11 outside
// attack: another client was refused 87% of its Checks for as long as it
// cared to watch).
func TestResetAnswersIdleGivenBack(t *testing.T) {
	const timeout = time.Second // sweeps every 250 ms, a grace of 250 ms
	e := start(t, unreadLimits(timeout))
	_, msg := largeAnswer(t, e)
	u := dialUnreadTCP(t, e.addr, 0)
	ids := holdAnswers(t, e, u, msg, "")
	at := time.Now()
	for _, id := range ids {
		u.reset(t, id)
	}
	testwait.Until(t, 5*time.Second, "the idle connection's pending counts given back", func() bool {
		o, h := server.GRPCStreams(e.svc)
		return o == 0 && h == 0
	})
	if d := time.Since(at); d > 3*timeout {
		t.Errorf("counts back %v after the resets, want within a few sweeps", d)
	}
	if u.isClosed() {
		t.Error("the connection was closed")
	}
	if n := metricValue(t, e.http, unreadMetric); n > 0 {
		t.Errorf("%s = %v, want 0", unreadMetric, n)
	}
}

// TestResetAnswersAckGivesBack: the ACK of a PING or SETTINGS the client
// sent after its resets gives the pending counts back at once (gRPC
// queues it behind the reset streams' cleanup), as a later stream's
// HEADERS do: a client that keeps the writer busy with them cannot keep
// the counts from the quiet sweep either.
func TestResetAnswersAckGivesBack(t *testing.T) {
	const timeout = 8 * time.Second // a grace of 2 s: the quiet sweep does not come into it
	e := start(t, unreadLimits(timeout))
	_, msg := largeAnswer(t, e)
	for _, kind := range []string{"ping", "settings"} {
		u := dialUnreadTCP(t, e.addr, 0)
		ids := holdAnswers(t, e, u, msg, kind+": ")
		// A PING read before the resets: its ACK does not count.
		u.ping(t)
		testwait.Until(t, 5*time.Second, kind+": the first ping answered", func() bool { _, _, _, p := u.counts(); return p >= 1 })
		for _, id := range ids {
			u.reset(t, id)
		}
		waitCounts(t, e, kind+": the reset answers pending", 0, 4)
		at := time.Now()
		u.wmu.Lock()
		var err error
		if kind == "ping" {
			err = u.fr.WritePing(false, [8]byte{2})
		} else {
			err = u.fr.WriteSettings()
		}
		u.wmu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		waitCounts(t, e, kind+": the pending counts given back by the ACK", 0, 0)
		if d := time.Since(at); d >= time.Second {
			t.Errorf("%s: counts back %v after the %s, want at once", kind, d, kind)
		}
		u.conn.Close()
	}
}

// raceCancellations runs workers calling Check with req over client for 2
// s, half of their calls cancelled at a random time around what a Check
// takes (so that some resets race the answers); it returns how many were
// answered, cancelled and failed otherwise, and what a Check takes.
func raceCancellations(t *testing.T, client authv3.AuthorizationClient, req *authv3.CheckRequest, workers int) (ok, cancelled, other int64, typical time.Duration) {
	t.Helper()
	start := time.Now()
	for range 20 {
		if _, err := client.Check(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	typical = time.Since(start) / 20
	var okN, cancelledN, otherN atomic.Int64
	var wg sync.WaitGroup
	end := time.Now().Add(2 * time.Second)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for time.Now().Before(end) {
				ctx, cancel := context.WithCancel(context.Background())
				if r.IntN(2) == 0 {
					time.AfterFunc(time.Duration(r.Int64N(int64(2*typical)+1)), cancel)
				}
				_, err := client.Check(ctx, req)
				cancel()
				switch status.Code(err) {
				case codes.OK:
					okN.Add(1)
				case codes.Canceled:
					cancelledN.Add(1)
				default:
					otherN.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return okN.Load(), cancelledN.Load(), otherN.Load(), typical
}

// TestCancellingClientKeepsItsStreams: a client cancelling half of its
// Checks (resets racing the answers: some come after the call returned,
// before its answer's HEADERS were written, and grpc-go then writes
// nothing more) with fewer calls under way than the limits: its Checks
// are not refused. Before, each such answer stayed counted on its way for
// one or two sweeps (a quarter of the 5 s stream_timeout each), and a
// client cancelling some of its Checks lost most of the rest to
// UNAVAILABLE (here 75%; the session-10 outside attack: a third).
func TestCancellingClientKeepsItsStreams(t *testing.T) {
	e := start(t, func(c *config.Config) {
		c.Server.GRPC.MaxConcurrentStreams, c.Server.GRPC.MaxStreams, c.Server.GRPC.ConnectionReserve = 4, 4, 2
	})
	req := sample(t, "01-get-bearer-jwt.json", e.token(t, "alice", "staff"))
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ok, cancelled, other, typical := raceCancellations(t, authv3.NewAuthorizationClient(conn), req, 3)
	t.Logf("%d answered, %d cancelled, %d other (a Check takes %v)", ok, cancelled, other, typical)
	if ok == 0 || cancelled == 0 {
		t.Errorf("want both answered and cancelled Checks")
	}
	// A cancelled call's stream stays open on the server until its call
	// returns, and an answer reset after its call returned stays pending
	// until a later stream's HEADERS are written, so the client's next
	// calls may find its 4 + 2 streams taken for a moment: 1.0-1.4% of the
	// calls here under -race on a quiet machine, 2.3% in a loaded CI run
	// (a 2% bound failed there). A count kept by every reset refused three
	// quarters of them, so 8% still tells the two apart.
	if all := ok + cancelled + other; other*100 > all*8 {
		t.Errorf("%d of %d Checks refused or failed, with 3 under way against 4 streams and a reserve of 2", other, all)
	}
}

// TestUnreadWellBehavedClient: a grpc-go client reading its answers, with
// cancellations racing them (some streams reset after the response HEADERS
// went out, before the trailers), over a short stream_timeout (1 s: a
// shorter one fails Checks under the race detector on a loaded runner): its
// connection is never closed (one dial), and the counts come back to 0.
func TestUnreadWellBehavedClient(t *testing.T) {
	const timeout = time.Second // four sweeps in the 2 s of load
	e := start(t, func(c *config.Config) { c.Server.GRPC.StreamTimeout = timeout })
	req := sample(t, "01-get-bearer-jwt.json", e.token(t, "alice", "staff"))
	var dials atomic.Int32
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	ok, cancelled, other, typical := raceCancellations(t, client, req, 16)
	t.Logf("%d answered, %d cancelled, %d other (a Check takes %v)", ok, cancelled, other, typical)
	if ok == 0 || cancelled == 0 {
		t.Errorf("want both answered and cancelled Checks")
	}
	if other > 0 {
		t.Errorf("%d Checks failed otherwise", other)
	}
	// Past stream_timeout and two sweeps, the connection is still the one.
	time.Sleep(2 * timeout)
	if _, err := client.Check(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d dials: the connection was closed", n)
	}
	if n := metricValue(t, e.http, unreadMetric); n > 0 {
		t.Errorf("%s = %v, want 0", unreadMetric, n)
	}
	waitCounts(t, e, "every count back", 0, 0)
}

// TestUnreadAnswersAdmin: the admin listener's answers left unread count
// against its streams as the ext_authz listener's do, over plaintext, TLS
// and TLS terminated by the console's listener; their connection's close
// gives them back. (Its stream_timeout is 30 s at least: the close by the
// sweeper is TestUnreadAnswersHeld's.)
func TestUnreadAnswersAdmin(t *testing.T) {
	for _, mode := range []string{"plaintext", "tls", "console-tls"} {
		t.Run(mode, func(t *testing.T) {
			tokens := adminTokens(t)
			mutate := []func(*config.Config){func(c *config.Config) {
				c.Admin.TokenFile = tokens
				c.Admin.Console = mode == "console-tls"
				// The admin listener's: 16 streams a connection and in all,
				// a reserve of 1.
				c.Server.GRPC.MaxConcurrentStreams = 16
				c.Server.GRPC.MaxStreams = 16
				c.Server.GRPC.ConnectionReserve = 1
			}}
			var tc *tls.Config
			if mode != "plaintext" {
				var srv config.TLS
				srv, tc = unreadTLS(t)
				mutate = append(mutate, func(c *config.Config) { c.Admin.TLS = srv })
			}
			e := start(t, mutate...)
			dial := unreadDialer(t, e.admin, tc)
			const method, auth = "/warden.admin.v1.AdminService/PolicyStatus", "Bearer " + readerToken
			u := dial(0)
			for range 16 {
				u.call(t, method, auth, []byte{})
			}
			testwait.Until(t, 5*time.Second, "16 answers begun", func() bool { b, _, _, _ := u.counts(); return b == 16 })
			testwait.Until(t, 5*time.Second, "16 answers held", func() bool { o, h := server.AdminStreams(e.svc); return o == 0 && h == 16 })
			p := dial(65535)
			p.call(t, method, auth, nil)
			two := p.call(t, method, auth, nil)
			testwait.Until(t, 5*time.Second, "the stream past the reserve refused", func() bool { return p.statusOf(two) != "" })
			if s := p.statusOf(two); s != fmt.Sprint(int(codes.Unavailable)) {
				t.Errorf("the stream past the reserve: grpc-status %s, want UNAVAILABLE", s)
			}
			u.conn.Close()
			p.conn.Close()
			testwait.Until(t, 5*time.Second, "every count back", func() bool { o, h := server.AdminStreams(e.svc); return o == 0 && h == 0 })
		})
	}
}

// TestAbuseUnreadAnswers: the session-9 outside attack. Connections that
// never open their windows send complete Checks whose answers are about
// 50 KB (80 spoofed header names echoed in headers_to_remove), 256 to a
// connection: at most max_streams' shared streams (63 here: 256 MiB of
// 4 MiB streams) and each connection's reserve (8) of answers are held,
// the other Checks refused (UNAVAILABLE); heap stays within what those
// answers hold; every connection is closed by 1.5 × stream_timeout and
// the counts and heap come back. Before, every answer was held (2,048 of
// 50 KB: +250 MB) for as long as the connections lived.
func TestAbuseUnreadAnswers(t *testing.T) {
	const timeout = time.Second
	conns, streams := abusetest.Count(4, 8), abusetest.Count(128, 256)
	e := start(t, func(c *config.Config) {
		c.Server.GRPC.MaxConcurrentStreams = 256
		c.Server.GRPC.MaxStreams = 4096
		c.Server.MaxRecvBytes = 4 << 20
		c.Server.GRPC.MaxBufferedBytes = 256 << 20
		c.Server.GRPC.ConnectionReserve = 8
		c.Server.GRPC.StreamTimeout = timeout
	})
	req, msg := spoofedAnswer(t, e, 80, 590)
	resp, err := e.client.Check(context.Background(), req)
	if err != nil || resp.GetStatus().GetCode() != 0 {
		t.Fatalf("the Check: %v %v", resp.GetStatus(), err)
	}
	answer := proto.Size(resp)
	if answer < 48_000 {
		t.Fatalf("an answer of %d bytes: want about 50 KB", answer)
	}
	shared := 256 << 20 / int(config.StreamBytes(4<<20))
	bound := shared + 8*conns

	before := abusetest.Measure()
	var us []*unreadClient
	sent := make([]atomic.Int32, conns)
	var senders sync.WaitGroup
	for i := range conns {
		u := dialUnreadTCP(t, e.addr, 0)
		us = append(us, u)
		senders.Go(func() {
			// On a loaded runner the sweep may close the connection
			// before all are sent: the rest are not.
			for range streams {
				if _, err := u.send("/envoy.service.auth.v3.Authorization/Check", "", msg); err != nil || u.isClosed() {
					return
				}
				sent[i].Add(1)
			}
		})
	}
	settled := func() (begun, ended int) {
		for _, u := range us {
			b, n, _, _ := u.counts()
			begun, ended = begun+b, ended+n
		}
		return begun, ended
	}
	senders.Wait()
	testwait.Until(t, 60*time.Second, "every stream sent answered or refused", func() bool {
		for i, u := range us {
			if b, n, _, _ := u.counts(); !u.isClosed() && b+n < int(sent[i].Load()) {
				return false
			}
		}
		return true
	})
	during := abusetest.Measure()
	begun, ended := settled()
	_, held := server.GRPCStreams(e.svc)
	t.Logf("%d connections × %d Checks, answers of %d bytes: %d begun (bound %d), %d refused, %d held", conns, streams, answer, begun, bound, ended, held)
	if begun > bound {
		t.Errorf("%d answers begun: want at most %d (max_streams' shared %d and a reserve of 8 on each of %d connections)", begun, bound, shared, conns)
	}
	abusetest.Check(t, "answers held", before, during, abusetest.Budget{
		Heap: uint64(bound*answer) + abusetest.Scale[uint64](16*abusetest.MiB),
	})
	for _, u := range us {
		select {
		case <-u.closed:
		case <-time.After(timeout*3/2 + 5*time.Second):
			t.Fatal("a connection holding unread answers is still open")
		}
	}
	waitCounts(t, e, "every count back", 0, 0)
	abusetest.Check(t, "after", before, abusetest.Measure(), abusetest.Budget{Heap: abusetest.Scale[uint64](16 * abusetest.MiB)})
	if n := metricValue(t, e.http, unreadMetric); n != float64(conns) {
		t.Errorf("%s = %v, want %d", unreadMetric, n, conns)
	}
	if r := e.reason(t, e.token(t, "alice", "staff")); r != "policy_allow" {
		t.Errorf("after: %s", r)
	}
}
