package server

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/wardenauthz/warden/authz/config"
)

// storeReplay is the DPoP replay cache: the service's store, which is
// built after the authenticator (so that replicas on one Redis share it).
type storeReplay struct{ s *Service }

func (r storeReplay) Seen(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if r.s.Store == nil {
		return false, fmt.Errorf("no store")
	}
	return r.s.Store.Seen(ctx, key, ttl)
}

// maxNonceKeyBytes bounds identity.dpop_nonce_key_file.
const maxNonceKeyBytes = 4096

// dpopNonceKey reads identity.dpop_nonce_key_file: nil when unset.
func dpopNonceKey(cfg *config.Config) ([]byte, error) {
	p := cfg.Identity.DPoPNonceKeyFile
	if p == "" {
		return nil, nil
	}
	f, err := os.Open(cfg.Resolve(p))
	if err != nil {
		return nil, fmt.Errorf("identity.dpop_nonce_key_file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxNonceKeyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("identity.dpop_nonce_key_file: %w", err)
	}
	if len(b) < 32 || len(b) > maxNonceKeyBytes {
		return nil, fmt.Errorf("identity.dpop_nonce_key_file: %s: want between 32 and %d bytes, got %d", p, maxNonceKeyBytes, len(b))
	}
	return b, nil
}
