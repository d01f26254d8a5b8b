package capool_test

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/wardenauthz/warden/internal/capool"
	"github.com/wardenauthz/warden/internal/testpki"
)

// leaf is the certificate in a PEM file.
func leaf(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", file)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLoad(t *testing.T) {
	ca, stranger := testpki.NewCA(t, "capool-ca"), testpki.NewCA(t, "capool-stranger")
	pool, err := capool.Load(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	ok := leaf(t, ca.Server(t, "ours").CertFile)
	if _, err := ok.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
		t.Errorf("a certificate the CA issued: %v, want it verified", err)
	}
	bad := leaf(t, stranger.Server(t, "theirs").CertFile)
	if _, err := bad.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err == nil {
		t.Error("another CA's certificate verified against the pool")
	}

	dir := t.TempDir()
	notCert := filepath.Join(dir, "not-a-cert.pem")
	if err := os.WriteFile(notCert, []byte("-----BEGIN NOTHING-----\nAAAA\n-----END NOTHING-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := capool.Load(notCert); !errors.Is(err, capool.ErrNoCertificates) {
		t.Errorf("a file without certificates: got %v, want ErrNoCertificates", err)
	}
	if _, err := capool.Load(filepath.Join(dir, "missing.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: got %v, want fs.ErrNotExist", err)
	}
}
