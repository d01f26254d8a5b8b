package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/wardenauthz/warden/internal/capool"
)

// tlsFiles serves a listener's certificate, key and client CA from files,
// and picks up new files without a restart (cert-manager and Kubernetes
// Secret rotations): at most once a second, a handshake looks at the files'
// size and modification time, and when they changed loads them again. A
// broken or half-written set keeps the last good one serving, logged and
// counted, and is tried again on a later handshake.
type tlsFiles struct {
	key                     string // config key, for errors ("server.tls")
	cert, keyFile, clientCA string // resolved paths; clientCA may be ""
	// optionalClient verifies a client certificate only when one is given
	// (the admin API with token callers too).
	optionalClient bool
	// onReload reports each reload attempt (nil error: loaded).
	onReload func(err error)
	log      *slog.Logger
	now      func() time.Time

	mu      sync.Mutex
	checked time.Time
	stamp   string
	cfg     *tls.Config
}

// tlsRecheck is how often handshakes look at the files.
const tlsRecheck = time.Second

// newTLSFiles loads the files once; an error here fails start-up.
func newTLSFiles(key, cert, keyFile, clientCA string, optionalClient bool, log *slog.Logger, onReload func(error)) (*tlsFiles, error) {
	f := &tlsFiles{key: key, cert: cert, keyFile: keyFile, clientCA: clientCA, optionalClient: optionalClient, onReload: onReload, log: log, now: time.Now}
	stamp, err := f.stampNow()
	if err != nil {
		return nil, err
	}
	cfg, err := f.load()
	if err != nil {
		return nil, err
	}
	f.cfg, f.stamp, f.checked = cfg, stamp, f.now()
	return f, nil
}

// config is the listener's tls.Config; its GetConfigForClient hands each
// handshake the current files' config.
func (f *tlsFiles) config() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return f.current(), nil
	}}
}

// current is the config to use now, reloaded first when the files changed.
func (f *tlsFiles) current() *tls.Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if now.Sub(f.checked) < tlsRecheck {
		return f.cfg
	}
	f.checked = now
	stamp, err := f.stampNow()
	if err == nil && stamp == f.stamp {
		return f.cfg
	}
	if err == nil {
		var cfg *tls.Config
		if cfg, err = f.load(); err == nil {
			f.cfg, f.stamp = cfg, stamp
			f.log.Info("TLS files reloaded", "listener", f.key)
		}
	}
	f.report(err)
	return f.cfg
}

func (f *tlsFiles) report(err error) {
	if err != nil {
		f.log.Warn("TLS files not reloaded; serving the last good ones", "listener", f.key, "err", err)
	}
	if f.onReload != nil {
		f.onReload(err)
	}
}

// stampNow identifies the files' current contents by size and mtime.
func (f *tlsFiles) stampNow() (string, error) {
	var s string
	for _, p := range []string{f.cert, f.keyFile, f.clientCA} {
		if p == "" {
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("%s: %w", f.key, err)
		}
		s += fmt.Sprintf("%d/%d;", st.Size(), st.ModTime().UnixNano())
	}
	return s, nil
}

// load reads the files into a config; with a client CA, client
// certificates are required.
func (f *tlsFiles) load() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(f.cert, f.keyFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.key, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if f.clientCA != "" {
		pool, err := capool.Load(f.clientCA)
		if err != nil {
			return nil, fmt.Errorf("%s.client_ca_file: %w", f.key, err)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
		if f.optionalClient {
			tc.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	return tc, nil
}
