package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/wardenauthz/warden/authz/admin"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/internal/abusetest"
	adminv1 "github.com/wardenauthz/warden/proto/warden/admin/v1"
)

// TestAbuseConnectionFlood: many connections instead of many streams, each
// sending one byte of the HTTP/2 preface and nothing more (slowloris), on
// the ext_authz and the admin listener. Past server.grpc.max_connections
// (64 on the admin listener) they wait in the kernel's accept queue;
// accepted ones are closed after server.grpc.connection_timeout; clients
// already connected are answered throughout, and when the flood ends its
// goroutines are gone.
func TestAbuseConnectionFlood(t *testing.T) {
	const maxConns, connTimeout = 64, 500 * time.Millisecond
	e := start(t, func(c *config.Config) {
		c.Server.GRPC.MaxConnections = maxConns
		c.Server.GRPC.ConnectionTimeout = connTimeout
		c.Admin.TokenFile = adminTokens(t)
	})
	tok := e.token(t, "alice", "staff")
	adm := dialAdmin(t, e.admin, admin.ClientOptions{TokenFile: tokenFileOf(t, readerToken)})
	adminOK := func() error {
		_, err := adm.PolicyStatus(context.Background(), &adminv1.PolicyStatusRequest{})
		return err
	}
	if err := adminOK(); err != nil {
		t.Fatal(err)
	}
	if r := e.reason(t, tok); r != "policy_allow" {
		t.Fatal(r)
	}
	n := abusetest.Count(300, 3000) // per listener
	before := abusetest.Measure()
	var flood []net.Conn
	for _, addr := range []string{e.addr, e.admin} {
		for range n {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("connection %d: %v", len(flood), err)
			}
			_, _ = c.Write([]byte("P")) // of "PRI * HTTP/2.0..."
			flood = append(flood, c)
		}
	}
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	if r := e.reason(t, tok); r != "policy_allow" {
		t.Errorf("the connected ext_authz client during the flood: %s", r)
	}
	if err := adminOK(); err != nil {
		t.Errorf("the connected admin client during the flood: %v", err)
	}
	abusetest.Check(t, "while connected", before, abusetest.Measure(), abusetest.Budget{
		Goroutines: 2*maxConns*3 + 50,
		Heap:       abusetest.Scale[uint64](32 * abusetest.MiB),
	})
	// Accepted connections are closed after connection_timeout: the first
	// maxConns on each listener are closed within a few timeouts.
	closed := 0
	buf := make([]byte, 64)
	for _, c := range flood {
		_ = c.SetReadDeadline(time.Now().Add(4 * connTimeout))
		var err error
		for err == nil { // the server's SETTINGS, then EOF
			_, err = c.Read(buf)
		}
		if !isTimeout(err) {
			closed++
		}
		if closed >= 2*maxConns {
			break
		}
	}
	if closed < 2*maxConns {
		t.Errorf("%d slow connections closed, want at least %d (connection_timeout)", closed, 2*maxConns)
	}
	for _, c := range flood {
		c.Close()
	}
	abusetest.Settled(t, before, 20)
	if r := e.reason(t, tok); r != "policy_allow" {
		t.Errorf("after: %s", r)
	}
}
