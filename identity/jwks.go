package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardenauthz/warden/internal/jsonnames"
)

const (
	maxJWKSBytes      = 1 << 20
	maxDiscoveryBytes = 256 << 10
	fetchTimeout      = 5 * time.Second
	// maxKeyWait bounds how long a Check waits for a key fetch (an unknown
	// kid); the fetch goes on in the background after it gives up.
	maxKeyWait = time.Second
	// minDeadlineMargin is the least a Check keeps of its deadline to
	// answer after giving up on a key fetch (else 10% of what is left).
	minDeadlineMargin = 20 * time.Millisecond
	// failureLogEvery bounds the fetch-failure log lines of one issuer.
	failureLogEvery = 30 * time.Second
)

// FetchObserver is told the outcome of every key fetch ("ok", "error").
type FetchObserver func(issuer, result string)

// keySet is an oidc.KeySet over a remote JWKS with what go-oidc's
// RemoteKeySet lacks: a size limit, a timeout, background refresh honouring
// the response's Cache-Control, and at most one fetch per unknown-kid
// interval (a flood of unknown kids costs one fetch), shared by every
// caller that wants it.
type keySet struct {
	name   string
	issuer string
	// url resolves the JWKS URL (discovery). On error it returns the URL
	// that failed.
	url     func(ctx context.Context) (string, error)
	client  *http.Client
	algs    []jose.SignatureAlgorithm
	now     func() time.Time
	observe FetchObserver
	log     *slog.Logger
	refresh JWKSRefreshConfig
	keys    atomic.Pointer[jose.JSONWebKeySet]

	mu       sync.Mutex
	inflight *fetchCall // the fetch under way, if any
	lastTry  time.Time  // start of the last fetch
	next     time.Duration
	st       KeyStatus
	loggedAt time.Time // last failure log line
	unlogged int       // failures since then, not logged
}

// fetchCall is one fetch that every caller wanting keys meanwhile shares.
type fetchCall struct {
	done chan struct{}
	set  *jose.JSONWebKeySet
	err  error
}

// KeyStatus is the state of one issuer's keys, for /readyz.
type KeyStatus struct {
	Issuer string // the configured name
	// URL is the last URL fetched (discovery or JWKS).
	URL       string
	Ready     bool      // keys fetched at least once
	LastOK    time.Time // last successful fetch
	LastError string    // the last fetch's error, "" once one succeeds
	LastErrAt time.Time
	Failures  int // consecutive failed fetches
}

func (k *keySet) ready() bool { return k.keys.Load() != nil }

func (k *keySet) status() KeyStatus {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.st
	s.Issuer, s.Ready = k.name, k.ready()
	return s
}

// unavailable is ErrIssuerNotReady with the time after which asking again
// makes sense, and what was unavailable when it was not the keys (kind:
// ErrIntrospectionUnavailable, ErrAPIKeysUnavailable).
type unavailable struct {
	after time.Duration
	cause error
	kind  error
}

func (u *unavailable) Error() string {
	if u.kind != nil {
		return fmt.Sprintf("%v: %v", u.kind, u.cause)
	}
	return fmt.Sprintf("%v: %v", ErrIssuerNotReady, u.cause)
}

func (u *unavailable) Unwrap() []error {
	if u.kind != nil {
		return []error{ErrIssuerNotReady, u.kind}
	}
	return []error{ErrIssuerNotReady}
}

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
	// Unknown key id (or no keys yet): the provider may have rotated.
	set, err = k.get(ctx, false)
	if err != nil {
		return nil, err // Warden cannot know: 503, never 401
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
// names none) that fits the token's algorithm (keyFits). found is false
// when no key has the token's kid (or, for a token without one, none fits);
// a key with the kid that does not fit the algorithm is a refusal.
func verifyWith(set *jose.JSONWebKeySet, kid string, jws *jose.JSONWebSignature) (payload []byte, found bool, err error) {
	alg := jws.Signatures[0].Header.Algorithm
	misfit := false
	for i := range set.Keys {
		key := &set.Keys[i]
		if kid != "" && key.KeyID != kid {
			continue
		}
		if key.Use != "" && key.Use != "sig" || !keyFits(key, alg) {
			misfit = misfit || kid != ""
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
	if misfit {
		return nil, true, fmt.Errorf("%w: key %q is not a key for %s", ErrSignature, kid, alg)
	}
	return nil, false, nil
}

// keyFits reports whether key may verify a signature made with alg
// (RFC 8725 section 3.1): the JWK's own alg, when it declares one, is alg,
// and the key's type is alg's: RSA for RS* and PS*, EC on alg's curve for
// ES*, Ed25519 for EdDSA.
func keyFits(key *jose.JSONWebKey, alg string) bool {
	if key.Algorithm != "" && key.Algorithm != alg {
		return false
	}
	switch k := key.Key.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case *ecdsa.PublicKey:
		var curve string
		switch alg {
		case "ES256":
			curve = "P-256"
		case "ES384":
			curve = "P-384"
		case "ES512":
			curve = "P-521"
		}
		return curve != "" && k.Curve != nil && k.Curve.Params().Name == curve
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// forSignatures reports whether a public key is a signature key one of
// algs can use: use absent or "sig", key_ops (ops, the raw JSON, or nil)
// absent or an array of strings holding "verify", and keyFits some alg.
func forSignatures(key *jose.JSONWebKey, ops json.RawMessage, algs []jose.SignatureAlgorithm) bool {
	if key.Use != "" && key.Use != "sig" {
		return false
	}
	if ops != nil {
		var list []string
		if err := json.Unmarshal(ops, &list); err != nil || !slices.Contains(list, "verify") {
			return false
		}
	}
	return slices.ContainsFunc(algs, func(a jose.SignatureAlgorithm) bool { return keyFits(key, string(a)) })
}

// get returns keys at least as new as the caller's question: it joins the
// fetch under way, or starts one unless one was tried within the unknown-kid
// interval (force skips that and waits for the whole fetch: the background
// refresh). It returns an unavailable error when the last fetch failed or
// the fetch outlasts the caller's wait (keyWait): the key source cannot say
// whether a key id exists.
func (k *keySet) get(ctx context.Context, force bool) (*jose.JSONWebKeySet, error) {
	k.mu.Lock()
	call := k.inflight
	if call == nil {
		now := k.now()
		if since := now.Sub(k.lastTry); !force && !k.lastTry.IsZero() && since < k.refresh.UnknownKidInterval && since >= 0 {
			failed := k.st.LastError
			k.mu.Unlock()
			if set := k.keys.Load(); set != nil && failed == "" {
				return set, nil // fetched just now: an unknown kid is unknown
			}
			if failed == "" {
				failed = "no keys yet"
			}
			return nil, &unavailable{after: k.refresh.UnknownKidInterval - since, cause: errors.New(failed)}
		}
		k.lastTry = now
		call = &fetchCall{done: make(chan struct{})}
		k.inflight = call
		// Detached from the caller: one Check's cancellation must not fail
		// the fetch for everyone waiting on it.
		go k.run(context.WithoutCancel(ctx), call)
	}
	k.mu.Unlock()
	// The caller waits no longer than maxKeyWait, nor so long that it
	// cannot answer before its own deadline (Envoy's timeout): 503 with
	// Retry-After, not a deadline error. The fetch goes on for later callers.
	if force {
		// The background refresh waits for the fetch (fetchTimeout bounds it).
		select {
		case <-call.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if call.err != nil {
			return nil, call.err
		}
		return call.set, nil
	}
	wait := keyWait(ctx)
	if wait <= 0 {
		return nil, &unavailable{after: k.refresh.UnknownKidInterval, cause: errors.New("key fetch under way, no time left to wait for it")}
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-call.done:
	case <-timer.C:
		return nil, &unavailable{after: k.refresh.UnknownKidInterval, cause: fmt.Errorf("key fetch still under way after %v", wait)}
	case <-ctx.Done():
		return nil, &unavailable{after: k.refresh.UnknownKidInterval, cause: fmt.Errorf("key fetch still under way: %w", ctx.Err())}
	}
	if call.err != nil {
		return nil, &unavailable{after: k.refresh.UnknownKidInterval, cause: call.err}
	}
	return call.set, nil
}

// keyWait is how long a caller with ctx may wait for a key fetch: at most
// maxKeyWait, and short of its deadline by a margin (10% of what is left,
// at least minDeadlineMargin) to answer in.
func keyWait(ctx context.Context) time.Duration {
	wait := maxKeyWait
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		wait = min(wait, left-max(left/10, minDeadlineMargin))
	}
	return wait
}

// run does one fetch and records its outcome.
func (k *keySet) run(ctx context.Context, call *fetchCall) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	set, u, lifetime, err := k.fetch(ctx)
	if err == nil {
		k.keys.Store(set)
	}
	url := redactURL(u)
	call.set, call.err = set, err
	k.mu.Lock()
	now := k.now()
	k.st.URL = url
	if err != nil {
		k.st.LastError, k.st.LastErrAt = err.Error(), now
		k.st.Failures++
		if k.loggedAt.IsZero() || now.Sub(k.loggedAt) >= failureLogEvery || now.Before(k.loggedAt) {
			k.log.Error("cannot fetch signing keys", "issuer", k.name, "issuer_url", k.issuer, "url", url,
				"err", err, "failures", k.st.Failures, "not_logged", k.unlogged, "have_keys", k.ready())
			k.loggedAt, k.unlogged = now, 0
		} else {
			k.unlogged++
		}
	} else {
		if k.st.Failures > 0 {
			k.log.Info("signing keys fetched again", "issuer", k.name, "url", url, "failures", k.st.Failures)
		}
		k.st.LastOK, k.st.LastError, k.st.Failures = now, "", 0
		k.loggedAt, k.unlogged = time.Time{}, 0
		k.next = lifetime
	}
	k.inflight = nil
	k.mu.Unlock()
	if err != nil {
		k.observe(k.name, "error")
	} else {
		k.observe(k.name, "ok")
	}
	close(call.done)
}

// nextRefresh is how long the background refresh waits after a fetch.
func (k *keySet) nextRefresh() time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.next
}

// background keeps the keys fresh until ctx ends: the first fetch retried
// with backoff, then one fetch per the JWKS's cache lifetime, with backoff
// (at most the minimum interval) after failures.
func (k *keySet) background(ctx context.Context, after func(time.Duration) <-chan time.Time) {
	backoff := 250 * time.Millisecond
	for {
		wait := backoff
		if _, err := k.get(ctx, true); err == nil {
			backoff = 250 * time.Millisecond
			wait = k.nextRefresh()
		} else {
			backoff = min(backoff*2, 30*time.Second, k.refresh.MinInterval)
		}
		select {
		case <-ctx.Done():
			return
		case <-after(wait):
		}
	}
}

func (k *keySet) fetch(ctx context.Context) (set *jose.JSONWebKeySet, url string, lifetime time.Duration, err error) {
	url, err = k.url(ctx)
	if err != nil {
		return nil, url, 0, err
	}
	var raw json.RawMessage
	h, err := getJSON(ctx, k.client, url, maxJWKSBytes, &raw)
	if err != nil {
		return nil, url, 0, fmt.Errorf("jwks: %w", err)
	}
	set, err = usableKeys(raw, k.algs)
	if err != nil {
		return nil, url, 0, fmt.Errorf("jwks: GET %s: %w", redactURL(url), err)
	}
	return set, url, cacheLifetime(h, k.now(), k.refresh), nil
}

// usableKeys parses a JWKS and keeps the keys that can verify tokens of
// algs: valid public keys (RSA of at least 2048 bits) for signatures
// (forSignatures). A set without one is an error.
func usableKeys(raw []byte, algs []jose.SignatureAlgorithm) (*jose.JSONWebKeySet, error) {
	// The set is read as the provider and every other verifier read it:
	// no member twice ("key_ops" twice: encoding/json keeps the last) and
	// names exactly ("KEYS" or "Key_Ops", which encoding/json takes for
	// keys and key_ops, are no members). Inside a key go-jose's own
	// decoder already refuses both.
	if err := checkDuplicates(raw); err != nil {
		return nil, err
	}
	set := &jose.JSONWebKeySet{}
	if err := jsonnames.Exact(raw, reflect.TypeOf(set), ""); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, set); err != nil {
		return nil, err
	}
	// go-jose drops key_ops: read it beside, key by key (the same array).
	var ops struct {
		Keys []struct {
			KeyOps json.RawMessage `json:"key_ops"`
		} `json:"keys"`
	}
	if err := jsonnames.Exact(raw, reflect.TypeOf(&ops), ""); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &ops); err != nil {
		return nil, err
	}
	if len(ops.Keys) != len(set.Keys) {
		return nil, errors.New("keys: unreadable key_ops")
	}
	usable := set.Keys[:0]
	for i, key := range set.Keys {
		if key.Valid() && key.IsPublic() && strongEnough(key) && forSignatures(&key, ops.Keys[i].KeyOps, algs) {
			usable = append(usable, key)
		}
	}
	if len(usable) == 0 {
		return nil, fmt.Errorf("no usable keys: none of %d is a public signature key (use sig, key_ops with verify) for the issuer's algorithms %v", len(set.Keys), algs)
	}
	set.Keys = usable
	return set, nil
}

// cacheLifetime is how long a JWKS response may be used, from its
// Cache-Control max-age (no-cache and no-store: none) or else its Expires,
// bounded by the refresh settings (the minimum when it says nothing).
func cacheLifetime(h http.Header, now time.Time, r JWKSRefreshConfig) time.Duration {
	d, ok := time.Duration(0), false
	for _, cc := range h.Values("Cache-Control") {
		for _, dir := range strings.Split(cc, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(dir), "=")
			switch strings.ToLower(name) {
			case "no-cache", "no-store":
				return r.MinInterval
			case "max-age":
				secs, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
				if err != nil || secs < 0 {
					return r.MinInterval // a broken header says nothing safe
				}
				d, ok = time.Duration(min(secs, int64(r.MaxInterval/time.Second)+1))*time.Second, true
			}
		}
	}
	if !ok {
		if exp := h.Get("Expires"); exp != "" {
			t, err := http.ParseTime(exp)
			if err != nil {
				return r.MinInterval // "0" and the like: already expired
			}
			base := now
			if date, err := http.ParseTime(h.Get("Date")); err == nil {
				base = date
			}
			d, ok = t.Sub(base), true
		}
	}
	if !ok {
		return r.MinInterval
	}
	return min(max(d, r.MinInterval), r.MaxInterval)
}

// getJSON GETs url and decodes at most limit bytes of JSON into v.
// It returns the response headers.
func getJSON(ctx context.Context, client *http.Client, rawURL string, limit int64, v any) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	url := redactURL(rawURL)
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err // *url.Error names the URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("GET %s: response over %d bytes", url, limit)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return resp.Header, nil
}

// redactURL is raw with any password replaced (for logs and /readyz).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// strongEnough refuses RSA keys under 2048 bits (a published weak key
// could be factored, and then anyone could sign).
func strongEnough(key jose.JSONWebKey) bool {
	if k, ok := key.Key.(*rsa.PublicKey); ok {
		return k.N.BitLen() >= 2048
	}
	return true
}
