package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/internal/capool"
	adminv1 "github.com/wardenauthz/warden/proto/warden/admin/v1"
)

// ClientOptions say how the CLI reaches an admin API.
type ClientOptions struct {
	// TokenFile holds the bearer token (its first token is sent).
	TokenFile string
	// CAFile turns on TLS, trusting these CAs; CertFile and KeyFile add a
	// client certificate (mTLS).
	CAFile, CertFile, KeyFile string
}

// Dial connects to the admin API at addr. A bearer token is sent in clear
// only to a loopback address.
func Dial(addr string, o ClientOptions) (adminv1.AdminServiceClient, func() error, error) {
	var opts []grpc.DialOption
	secure := o.CAFile != ""
	if secure {
		roots, err := capool.Load(o.CAFile)
		if errors.Is(err, capool.ErrNoCertificates) {
			err = fmt.Errorf("%s: %w", o.CAFile, err)
		}
		if err != nil {
			return nil, nil, err
		}
		tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if o.CertFile != "" {
			c, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
			if err != nil {
				return nil, nil, err
			}
			tc.Certificates = []tls.Certificate{c}
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if o.TokenFile != "" {
		if !secure && !config.Loopback(addr) {
			return nil, nil, fmt.Errorf("%s is not a loopback address: refusing to send the admin token without TLS (give a CA file)", addr)
		}
		tok, err := ReadToken(o.TokenFile)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(tok)))
	}
	if o.TokenFile == "" && o.CertFile == "" {
		msg := "no admin credentials: give a token file or a client certificate"
		if p, err := DevTokenPath(); err == nil {
			msg += " (the quick start's dev token " + p + " does not exist yet: is `warden serve` running?)"
		}
		return nil, nil, errors.New(msg)
	}
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, nil, err
	}
	return adminv1.NewAdminServiceClient(cc), cc.Close, nil
}

type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false: Dial allows clear text to loopback only.
func (b bearer) RequireTransportSecurity() bool { return false }
