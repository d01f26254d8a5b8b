package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/internal/testpki"
	"github.com/wardenauthz/warden/internal/testwait"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

// replace puts src's contents at dst atomically (as a Secret rotation does).
func replace(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// handshake connects to addr over mTLS and returns the server certificate's
// serial number, or the handshake error.
func handshake(addr, caFile string, client testpki.Pair) (string, error) {
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(caFile)
	pool.AppendCertsFromPEM(pem)
	cert, err := tls.LoadX509KeyPair(client.CertFile, client.KeyFile)
	if err != nil {
		return "", err
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
	if err != nil {
		return "", err
	}
	defer c.Close()
	// TLS 1.3: a refused client certificate shows on the first read.
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
		return "", err
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

func isTimeout(err error) bool {
	ne, ok := err.(interface{ Timeout() bool })
	return ok && ne.Timeout()
}

// TestListenerTLSReload: Envoy → Warden over mTLS; the certificate, key and
// client CA are replaced on disk (a cert-manager rotation) and new
// connections get them without a restart, while a broken replacement
// keeps the last good set serving.
func TestListenerTLSReload(t *testing.T) {
	dir := t.TempDir()
	ca1, ca2 := testpki.NewCA(t, "ca1"), testpki.NewCA(t, "ca2")
	files := map[string]string{"cert": filepath.Join(dir, "tls.crt"), "key": filepath.Join(dir, "tls.key"), "ca": filepath.Join(dir, "ca.crt")}
	srv1, envoy1 := ca1.Server(t, "warden1"), ca1.Client(t, "envoy1", "spiffe://cluster.local/ns/istio-system/sa/gateway")
	replace(t, srv1.CertFile, files["cert"])
	replace(t, srv1.KeyFile, files["key"])
	replace(t, ca1.CertFile, files["ca"])
	e := start(t, func(c *config.Config) {
		c.Server.TLS = config.TLS{CertFile: files["cert"], KeyFile: files["key"], ClientCAFile: files["ca"]}
	})

	first, err := handshake(e.addr, ca1.CertFile, envoy1)
	if err != nil {
		t.Fatalf("first handshake: %v", err)
	}
	// A Check over mTLS works.
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(clientCreds(t, ca1.CertFile, envoy1)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if resp, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), sample(t, "01-get-bearer-jwt.json", e.token(t, "alice", "staff"))); err != nil || resp.GetStatus().GetCode() != 0 {
		t.Fatalf("check over mTLS: %v %v", resp.GetStatus(), err)
	}
	// A client of another CA is refused.
	if _, err := handshake(e.addr, ca1.CertFile, ca2.Client(t, "stranger", "")); err == nil {
		t.Fatal("a client certificate of another CA was accepted")
	}

	// Rotate everything to CA 2.
	srv2, envoy2 := ca2.Server(t, "warden2"), ca2.Client(t, "envoy2", "")
	replace(t, srv2.CertFile, files["cert"])
	replace(t, srv2.KeyFile, files["key"])
	replace(t, ca2.CertFile, files["ca"])
	var second string
	testwait.NoError(t, 5*time.Second, func() (err error) {
		if second, err = handshake(e.addr, ca2.CertFile, envoy2); err != nil {
			return fmt.Errorf("rotated certificate never served: %w", err)
		}
		return nil
	})
	if second == first {
		t.Fatal("same certificate after rotation")
	}
	if _, err := handshake(e.addr, ca1.CertFile, envoy1); err == nil {
		t.Error("the old CA's client is still accepted after rotation")
	}

	// A half-written certificate: the last good set keeps serving. Every
	// handshake until the reload was tried (a handshake looks at the files
	// once a second) and after it gets the good certificate.
	const reloadErrors = `warden_tls_reloads_total{listener="server.tls",result="error"}`
	before := max(metricValue(t, e.http, reloadErrors), 0) // -1: no error counted yet
	if err := os.WriteFile(files["cert"], []byte("-----BEGIN CERTIFICATE-----\ngarbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 5*time.Second, "broken rotation not counted", func() bool {
		if got, err := handshake(e.addr, ca2.CertFile, envoy2); err != nil || got != second {
			t.Fatalf("after a broken rotation: serial %s, %v (want %s)", got, err, second)
		}
		return metricValue(t, e.http, reloadErrors) > before
	})
	if got, err := handshake(e.addr, ca2.CertFile, envoy2); err != nil || got != second {
		t.Fatalf("after a broken rotation was tried: serial %s, %v (want %s)", got, err, second)
	}
}

// clientCreds are gRPC transport credentials for an mTLS client.
func clientCreds(t *testing.T, caFile string, p testpki.Pair) credentials.TransportCredentials {
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(caFile)
	pool.AppendCertsFromPEM(pem)
	cert, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return credentials.NewTLS(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}})
}

// TestRedisTLS: the Redis store over TLS with a client certificate
// (redis-server's tls-auth-clients), and a refusal of a server whose
// certificate is not of the configured CA (fail closed: 503).
func TestRedisTLS(t *testing.T) {
	ca := testpki.NewCA(t, "redis-ca")
	srvPair, client := ca.Server(t, "redis"), ca.Client(t, "warden", "")
	port := redistest.FreePort(t)
	redistest.StartArgs(t, "--tls-port", strconv.Itoa(port), "--tls-cert-file", srvPair.CertFile, "--tls-key-file", srvPair.KeyFile,
		"--tls-ca-cert-file", ca.CertFile, "--tls-auth-clients", "yes")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	redisTLS := func(t config.RedisTLS) func(*config.Config) {
		return func(c *config.Config) {
			c.Store.Kind = "redis"
			c.Store.Redis.Addrs = []string{addr}
			c.Store.Redis.TLS = t
		}
	}
	good := start(t, redisTLS(config.RedisTLS{CAFile: ca.CertFile, CertFile: client.CertFile, KeyFile: client.KeyFile}))
	tok := good.token(t, "alice", "staff")
	for range 3 {
		if r := good.reason(t, tok); r != "policy_allow" {
			t.Fatalf("over TLS: %s", r)
		}
	}
	other := testpki.NewCA(t, "other")
	bad := start(t, redisTLS(config.RedisTLS{CAFile: other.CertFile, CertFile: client.CertFile, KeyFile: client.KeyFile}))
	if r := bad.reason(t, bad.token(t, "alice", "staff")); r != "unavailable" {
		t.Fatalf("a Redis with a certificate of another CA: %s, want unavailable", r)
	}
}

// metricValue reads one sample (name with labels, as exposed) from /metrics;
// -1 when absent.
func metricValue(t *testing.T, base, sample string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}
