// Package capool reads the PEM certificate authorities a config names (a
// client_ca_file, a ca_file) into an x509.CertPool: the one copy the
// listeners, the Redis client and the admin client share.
package capool

import (
	"crypto/x509"
	"errors"
	"os"
)

// ErrNoCertificates means a CA file holds no PEM certificate.
var ErrNoCertificates = errors.New("no certificates")

// Load reads the PEM certificates in the file at path. A file that cannot
// be read gives the os error (which names the path); one without a
// certificate, ErrNoCertificates.
func Load(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, ErrNoCertificates
	}
	return pool, nil
}
