package identity

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

const (
	maxJWKSBytes      = 1 << 20
	maxDiscoveryBytes = 256 << 10
	refetchCooldown   = 30 * time.Second
	fetchTimeout      = 5 * time.Second
)

// FetchObserver is told the outcome of every key fetch ("ok", "error").
type FetchObserver func(issuer, result string)

// keySet is an oidc.KeySet over a remote JWKS with what go-oidc's
// RemoteKeySet lacks: a size limit, a timeout, and at most one refetch per
// cooldown for unknown key ids (a flood of unknown kids costs one fetch).
type keySet struct {
	name     string
	url      func(ctx context.Context) (string, error)
	client   *http.Client
	algs     []jose.SignatureAlgorithm
	now      func() time.Time
	observe  FetchObserver
	keys     atomic.Pointer[jose.JSONWebKeySet]
	group    singleflight.Group
	mu       sync.Mutex
	lastTry  time.Time
	cooldown time.Duration
}

func (k *keySet) ready() bool { return k.keys.Load() != nil }

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, kid, err := parseJWS(jwt, k.algs)
	if err != nil {
		return nil, err
	}
	set := k.keys.Load()
	if set != nil {
		if payload, found, err := verifyWith(set, kid, jws); found {
			return payload, err
		}
	}
	// Unknown key id (or no keys yet): refetch, at most once per cooldown.
	set, err = k.refresh(ctx, false)
	if err != nil {
		return nil, err
	}
	if payload, found, err := verifyWith(set, kid, jws); found {
		return payload, err
	}
	return nil, ErrUnknownKey
}

// parseJWS parses a compact JWS with exactly one signature and returns its
// key id.
func parseJWS(jwt string, algs []jose.SignatureAlgorithm) (*jose.JSONWebSignature, string, error) {
	jws, err := jose.ParseSignedCompact(jwt, algs)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, "", fmt.Errorf("%w: exactly one signature required", ErrUnsupportedForm)
	}
	return jws, jws.Signatures[0].Header.KeyID, nil
}

// verifyWith verifies against the key with kid (or every key when the token
// names none). found is false when no key could be tried.
func verifyWith(set *jose.JSONWebKeySet, kid string, jws *jose.JSONWebSignature) (payload []byte, found bool, err error) {
	for i := range set.Keys {
		key := &set.Keys[i]
		if kid != "" && key.KeyID != kid {
			continue
		}
		if key.Use != "" && key.Use != "sig" {
			continue
		}
		found = true
		if p, err := jws.Verify(key); err == nil {
			return p, true, nil
		}
	}
	if found {
		return nil, true, ErrSignature
	}
	return nil, false, nil
}

// refresh fetches the JWKS unless one was tried within the cooldown (force
// skips the cooldown, for start-up retries). Concurrent callers share a fetch.
func (k *keySet) refresh(ctx context.Context, force bool) (*jose.JSONWebKeySet, error) {
	k.mu.Lock()
	now := k.now()
	if !force && !k.lastTry.IsZero() && now.Sub(k.lastTry) < k.cooldown {
		k.mu.Unlock()
		if set := k.keys.Load(); set != nil {
			return set, nil
		}
		return nil, ErrIssuerNotReady
	}
	k.lastTry = now
	k.mu.Unlock()
	ch := k.group.DoChan("jwks", func() (any, error) {
		// Detached from the caller: one Check's cancellation must not fail
		// the fetch for everyone waiting on it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		defer cancel()
		set, err := k.fetch(fctx)
		if err != nil {
			k.observe(k.name, "error")
			return nil, err
		}
		k.observe(k.name, "ok")
		k.keys.Store(set)
		return set, nil
	})
	// The caller waits no longer than its own deadline (Envoy's timeout):
	// past it, it goes on with the keys there are, and the fetch goes on
	// for later callers.
	var v any
	var err error
	select {
	case r := <-ch:
		v, err = r.Val, r.Err
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		if set := k.keys.Load(); set != nil {
			return set, nil // keep serving the keys we have
		}
		return nil, fmt.Errorf("%w: %v", ErrIssuerNotReady, err)
	}
	return v.(*jose.JSONWebKeySet), nil
}

func (k *keySet) fetch(ctx context.Context) (*jose.JSONWebKeySet, error) {
	u, err := k.url(ctx)
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	if err := getJSON(ctx, k.client, u, maxJWKSBytes, &set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	usable := set.Keys[:0]
	for _, key := range set.Keys {
		if key.Valid() && key.IsPublic() && strongEnough(key) {
			usable = append(usable, key)
		}
	}
	if len(usable) == 0 {
		return nil, errors.New("jwks: no usable public keys")
	}
	set.Keys = usable
	return &set, nil
}

// getJSON GETs url and decodes at most limit bytes of JSON into v.
func getJSON(ctx context.Context, client *http.Client, url string, limit int64, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if int64(len(body)) > limit {
		return fmt.Errorf("GET %s: response over %d bytes", url, limit)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// strongEnough refuses RSA keys under 2048 bits (a published weak key
// could be factored, and then anyone could sign).
func strongEnough(key jose.JSONWebKey) bool {
	if k, ok := key.Key.(*rsa.PublicKey); ok {
		return k.N.BitLen() >= 2048
	}
	return true
}
