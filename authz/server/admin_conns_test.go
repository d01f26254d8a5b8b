package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/wardenauthz/warden/authz/admin"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/server"
	adminv1 "github.com/wardenauthz/warden/proto/warden/admin/v1"
)

// TestAdminHeldConnections: connections that never authenticate (silent;
// an HTTP/2 preface and SETTINGS, then nothing; half a preface), more of
// them than the admin listener admits, lock no operator out: an
// authenticated admin call and a console request succeed at once (each
// new connection displaces the oldest unauthenticated one), and the held
// connections are closed within seconds, not kept until a keepalive.
func TestAdminHeldConnections(t *testing.T) {
	tokens := adminTokens(t)
	e := start(t, func(c *config.Config) { c.Admin.TokenFile = tokens; c.Admin.Console = true })
	const n = 80 // over the admin listener's 64
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			_ = c.Close()
		}
	})
	for i := range n {
		c, err := net.DialTimeout("tcp", e.admin, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		var first string
		switch i % 3 {
		case 1:
			first = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
		case 2:
			first = "PRI * HTTP/2.0\r\n"
		}
		if _, err := io.WriteString(c, first); err != nil {
			t.Fatal(err)
		}
	}
	// Promptly: well before any held connection's own time is up.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	reader := dialAdmin(t, e.admin, admin.ClientOptions{TokenFile: tokenFileOf(t, readerToken)})
	if _, err := reader.PolicyStatus(ctx, &adminv1.PolicyStatusRequest{}); err != nil {
		t.Errorf("an admin call beside %d held connections: %v", n, err)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+e.admin+"/console/api/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+readerToken)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Errorf("a console request beside %d held connections: %v", n, err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("console request: %d", resp.StatusCode)
		}
	}
	// Both the gRPC and the console connection are marked authenticated:
	// they keep their slots.
	if _, authed := server.AdminConnsOpen(e.svc); authed < 2 {
		t.Errorf("%d authenticated admin connections, want the gRPC and the console one", authed)
	}
	// Every held connection is closed by the server (EOF or reset), none
	// kept until it times out here.
	deadline := time.Now().Add(20 * time.Second)
	for i, c := range held {
		_ = c.SetReadDeadline(deadline)
		_, err := io.Copy(io.Discard, c)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("held connection %d (kind %d) still open after 20s", i, i%3)
		}
	}
	// The operator's gRPC connection authenticated: it stays and still works.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if _, err := reader.PolicyStatus(ctx2, &adminv1.PolicyStatusRequest{}); err != nil {
		t.Errorf("the operator's connection after the others closed: %v", err)
	}
}

// TestAdminForbiddenConnections: 64 connections whose caller's token is
// valid but lacks the grant (every console request answered 403), kept
// busy with requests for the console's shell and assets, lock no operator
// out: a refused request does not authenticate a connection (as a refused
// gRPC method does not), so each new connection displaces one of them,
// and an operator's console request and admin call succeed.
func TestAdminForbiddenConnections(t *testing.T) {
	tokens := adminTokens(t)
	e := start(t, func(c *config.Config) { c.Admin.TokenFile = tokens; c.Admin.Console = true })
	const n = 64
	type held struct {
		c net.Conn
		r *bufio.Reader
	}
	var conns []held
	t.Cleanup(func() {
		for _, h := range conns {
			_ = h.c.Close()
		}
	})
	get := func(h held, path, tok string) (int, error) {
		req := "GET " + path + " HTTP/1.1\r\nHost: " + e.admin + "\r\n"
		if tok != "" {
			req += "Authorization: Bearer " + tok + "\r\n"
		}
		_ = h.c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(h.c, req+"\r\n"); err != nil {
			return 0, err
		}
		resp, err := http.ReadResponse(h.r, nil)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	for range n {
		c, err := net.DialTimeout("tcp", e.admin, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		h := held{c, bufio.NewReader(c)}
		conns = append(conns, h)
		// revokerToken holds Revoke only: the policies view is refused.
		if code, err := get(h, "/console/api/policies", revokerToken); err != nil || code != http.StatusForbidden {
			t.Fatalf("a refused console request: %d %v", code, err)
		}
		if code, err := get(h, "/console/assets/console.js", ""); err != nil || code != 200 {
			t.Fatalf("an asset: %d %v", code, err)
		}
	}
	if _, authed := server.AdminConnsOpen(e.svc); authed != 0 {
		t.Errorf("%d connections authenticated by refused requests", authed)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+e.admin+"/console/api/policies", nil)
	req.Header.Set("Authorization", "Bearer "+readerToken)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Errorf("an operator's console request beside %d refused connections: %v", n, err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("the operator's console request: %d", resp.StatusCode)
		}
	}
	reader := dialAdmin(t, e.admin, admin.ClientOptions{TokenFile: tokenFileOf(t, readerToken)})
	if _, err := reader.PolicyStatus(ctx, &adminv1.PolicyStatusRequest{}); err != nil {
		t.Errorf("an operator's admin call beside %d refused connections: %v", n, err)
	}
}

// TestAdminCallerCannotHoldTheListener: the session-12 outside attack F6.
// A token allowed only to read held all 64 admin connections with a cheap
// call on each, and an operator's new connection was refused for as long
// as it cared to keep them. Admin API callers are now named to the
// listener (as console callers are): one keeps at most 16 connections
// authenticated, the rest may be displaced, and the revoker's call on a
// new connection succeeds at once.
func TestAdminCallerCannotHoldTheListener(t *testing.T) {
	tokens := adminTokens(t)
	e := start(t, func(c *config.Config) { c.Admin.TokenFile = tokens })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 64 {
		reader := dialAdmin(t, e.admin, admin.ClientOptions{TokenFile: tokenFileOf(t, readerToken)})
		if _, err := reader.PolicyStatus(ctx, &adminv1.PolicyStatusRequest{}); err != nil {
			t.Fatalf("reader connection %d: %v", i, err)
		}
	}
	if all, authed := server.AdminConnsOpen(e.svc); all != 64 || authed != 16 {
		t.Errorf("%d open, %d authenticated; want 64, the reader's 16", all, authed)
	}
	revoker := dialAdmin(t, e.admin, admin.ClientOptions{TokenFile: tokenFileOf(t, revokerToken)})
	rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
	defer rcancel()
	if _, err := revoker.Revoke(rctx, &adminv1.RevokeRequest{Target: &adminv1.RevokeRequest_Token{Token: &adminv1.RevokeToken{Jti: "held-listener"}}}); err != nil {
		t.Errorf("the revoker's call beside 64 connections of one reader: %v", err)
	}
}
