package identity

import (
	"container/list"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"

	"github.com/wardenauthz/warden/internal/ratelog"
)

// Which tokens of an issuer are introspected.
const (
	// IntrospectOpaque: tokens that are not JWTs (no issuer of their own).
	IntrospectOpaque = "opaque"
	// IntrospectAll: opaque tokens and this issuer's JWTs (the endpoint
	// then also answers for revocation at the issuer).
	IntrospectAll = "all"
)

// IntrospectionConfig configures token introspection (RFC 7662) at one
// issuer.
type IntrospectionConfig struct {
	// Endpoint is the introspection endpoint; "" reads it from discovery
	// (introspection_endpoint).
	Endpoint string `yaml:"endpoint"`
	ClientID string `yaml:"client_id"`
	// The client authenticates with exactly one of: a secret read from an
	// environment variable or a file (client_secret_basic), or a signed
	// assertion (private_key_jwt, RFC 7523).
	ClientSecretEnv  string               `yaml:"client_secret_env"`
	ClientSecretFile string               `yaml:"client_secret_file"`
	PrivateKeyJWT    *PrivateKeyJWTConfig `yaml:"private_key_jwt"`
	// Tokens: opaque (default) or all.
	Tokens string `yaml:"tokens"`
	// JWTResponse asks for signed answers (RFC 9701,
	// application/token-introspection+jwt) and refuses plain JSON ones.
	JWTResponse bool `yaml:"jwt_response"`
	// CacheTTL bounds how long an active answer is reused (and exp too).
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// NegativeTTL is how long an inactive answer is reused.
	NegativeTTL time.Duration `yaml:"negative_ttl"`
	// Timeout bounds one introspection call (waiting for a slot included).
	Timeout time.Duration `yaml:"timeout"`
	// CacheSize bounds the cached answers (least recently used go first).
	CacheSize int `yaml:"cache_size"`
	// MaxConcurrent bounds the calls under way at once.
	MaxConcurrent int `yaml:"max_concurrent"`
}

// PrivateKeyJWTConfig is the key a client assertion is signed with.
type PrivateKeyJWTConfig struct {
	KeyFile string `yaml:"key_file"` // PEM (PKCS#8, PKCS#1 or SEC 1)
	Alg     string `yaml:"alg"`      // default RS256 for RSA keys, ES256 for EC, EdDSA for Ed25519
	KeyID   string `yaml:"kid"`
}

const (
	defaultIntrospectTTL      = 5 * time.Minute
	defaultIntrospectNegative = 10 * time.Second
	defaultIntrospectTimeout  = 2 * time.Second
	defaultIntrospectCache    = 10000
	defaultIntrospectParallel = 16
	maxIntrospectBytes        = 64 << 10
	introspectJWTType         = "application/token-introspection+jwt"
	// introspectLogInterval: an endpoint that is down costs one warning
	// line per interval (with a count of the ones suppressed), not one per
	// request.
	introspectLogInterval = 10 * time.Second
)

func (c *IntrospectionConfig) setDefaults() {
	if c.Tokens == "" {
		c.Tokens = IntrospectOpaque
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = defaultIntrospectTTL
	}
	if c.NegativeTTL == 0 {
		c.NegativeTTL = defaultIntrospectNegative
	}
	if c.Timeout == 0 {
		c.Timeout = defaultIntrospectTimeout
	}
	if c.CacheSize == 0 {
		c.CacheSize = defaultIntrospectCache
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = defaultIntrospectParallel
	}
}

func (c *IntrospectionConfig) validate(p string, is IssuerConfig, bad func(string, string, ...any)) {
	if c.Endpoint != "" {
		if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad(p+".endpoint", "must be an http(s) URL, got %q", c.Endpoint)
		} else if !is.InsecureHTTP && insecureURL(c.Endpoint) {
			bad(p+".endpoint", "%q is plain http on a host that is not loopback: tokens and the client secret would cross the network in clear; use https (or set insecure_http: true)", c.Endpoint)
		}
	}
	if c.ClientID == "" {
		bad(p+".client_id", "is required")
	}
	n := 0
	for _, set := range []bool{c.ClientSecretEnv != "", c.ClientSecretFile != "", c.PrivateKeyJWT != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		bad(p, "set exactly one of client_secret_env, client_secret_file, private_key_jwt")
	}
	if k := c.PrivateKeyJWT; k != nil {
		if k.KeyFile == "" {
			bad(p+".private_key_jwt.key_file", "is required")
		}
		if k.Alg != "" && !slices.Contains(supportedAlgs, k.Alg) {
			bad(p+".private_key_jwt.alg", "%q is not allowed (one of %s)", k.Alg, strings.Join(supportedAlgs, ", "))
		}
	}
	if c.Tokens != IntrospectOpaque && c.Tokens != IntrospectAll {
		bad(p+".tokens", "must be opaque or all, got %q", c.Tokens)
	}
	if c.Tokens == IntrospectAll && is.DPoP == DPoPRequired {
		bad(p+".tokens", "all refuses sender-constrained (cnf) JWTs, which dpop: required demands: use tokens: opaque, or dpop: allowed")
	}
	if c.CacheTTL < 0 || c.CacheTTL > time.Hour {
		bad(p+".cache_ttl", "must be between 0s and 1h, got %s", c.CacheTTL)
	}
	if c.NegativeTTL < 0 || c.NegativeTTL > 5*time.Minute {
		bad(p+".negative_ttl", "must be between 0s and 5m, got %s", c.NegativeTTL)
	}
	if c.Timeout < 10*time.Millisecond || c.Timeout > 30*time.Second {
		bad(p+".timeout", "must be between 10ms and 30s, got %s", c.Timeout)
	}
	if c.CacheSize < 1 || c.CacheSize > 1<<20 {
		bad(p+".cache_size", "must be between 1 and 1048576, got %d", c.CacheSize)
	}
	if c.MaxConcurrent < 1 || c.MaxConcurrent > 1024 {
		bad(p+".max_concurrent", "must be between 1 and 1024, got %d", c.MaxConcurrent)
	}
}

// introspector asks one issuer's introspection endpoint about tokens.
type introspector struct {
	cfg    IntrospectionConfig
	is     *issuer
	client *http.Client
	now    func() time.Time
	secret string             // client_secret_basic
	signer jose.Signer        // private_key_jwt
	log    *slog.Logger       // rate-limited: one line per message per introspectLogInterval
	slots  chan struct{}      // bounds calls under way
	group  singleflight.Group // one call per token at a time
	cache  *lruCache

	mu       sync.Mutex
	endpoint string // resolved
}

func newIntrospector(is *issuer, client *http.Client, now func() time.Time, log *slog.Logger) (*introspector, error) {
	cfg := *is.cfg.Introspection
	in := &introspector{cfg: cfg, is: is, now: now, endpoint: cfg.Endpoint,
		log:   slog.New(ratelog.New(log.Handler(), slog.LevelWarn, introspectLogInterval, now)).With("issuer", is.cfg.Name),
		slots: make(chan struct{}, cfg.MaxConcurrent), cache: newLRU(cfg.CacheSize)}
	p := "identity.issuers[" + is.cfg.Name + "].introspection"
	switch {
	case cfg.ClientSecretEnv != "":
		in.secret = os.Getenv(cfg.ClientSecretEnv)
		if in.secret == "" {
			return nil, fmt.Errorf("%s.client_secret_env: $%s is empty or unset", p, cfg.ClientSecretEnv)
		}
	case cfg.ClientSecretFile != "":
		b, err := os.ReadFile(cfg.ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("%s.client_secret_file: %w", p, err)
		}
		in.secret = strings.TrimRight(string(b), "\r\n")
		if in.secret == "" {
			return nil, fmt.Errorf("%s.client_secret_file: %s is empty", p, cfg.ClientSecretFile)
		}
	case cfg.PrivateKeyJWT != nil:
		s, err := assertionSigner(*cfg.PrivateKeyJWT)
		if err != nil {
			return nil, fmt.Errorf("%s.private_key_jwt: %w", p, err)
		}
		in.signer = s
	}
	// No redirects: a POST carrying a token and client credentials goes
	// to the configured endpoint or nowhere (a redirect answers 503).
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	in.client = &c
	return in, nil
}

// assertionSigner reads a PEM private key for RFC 7523 client assertions.
func assertionSigner(k PrivateKeyJWTConfig) (jose.Signer, error) {
	key, err := readPrivateKeyPEM(k.KeyFile)
	if err != nil {
		return nil, err
	}
	alg := jose.SignatureAlgorithm(k.Alg)
	if alg == "" {
		alg = defaultAlgFor(key)
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if k.KeyID != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), k.KeyID)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.KeyFile, err)
	}
	return s, nil
}

// unavailableNow is a 503 for an introspection that could not be made.
func unavailableNow(format string, args ...any) error {
	return &unavailable{after: time.Second, kind: ErrIntrospectionUnavailable, cause: fmt.Errorf(format, args...)}
}

// ErrInactive is an introspection answer of active: false (or a token the
// issuer no longer knows).
var ErrInactive = fmt.Errorf("%w: token not active", ErrClaims)

// introspect judges raw at the endpoint, through the cache.
// verify is introspect with the issuer, as verifyToken answers.
func (in *introspector) verify(ctx context.Context, raw string) (*verified, *issuer, error) {
	v, err := in.introspect(ctx, raw)
	if err != nil {
		return nil, nil, err
	}
	return v, in.is, nil
}

func (in *introspector) introspect(ctx context.Context, raw string) (*verified, error) {
	key := hashToken(raw)
	if v, err, ok := in.cache.get(key, in.now()); ok {
		return v, err
	}
	r, err, _ := in.group.Do(string(key[:]), func() (any, error) {
		if v, err, ok := in.cache.get(key, in.now()); ok { // filled while we waited
			return v, err
		}
		// The call outlives no caller's patience by more than the timeout,
		// and one caller giving up does not fail the others sharing it.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.cfg.Timeout)
		defer cancel()
		v, err := in.call(cctx, raw)
		now := in.now()
		switch {
		case err == nil:
			until := now.Add(in.cfg.CacheTTL)
			if v.token.Exp.Before(until) {
				until = v.token.Exp
			}
			in.cache.put(key, v, nil, until)
		case !IsUnavailable(err): // a refusal: remembered briefly; an outage never
			in.cache.put(key, nil, err, now.Add(in.cfg.NegativeTTL))
		default:
			// The error names the endpoint and what was wrong with the
			// answer, never the token or the client's credentials.
			in.log.Warn("token introspection unavailable; refusing its tokens with 503", "err", err)
		}
		return v, err
	})
	if err != nil {
		return nil, err
	}
	return r.(*verified), nil
}

func (in *introspector) resolve(ctx context.Context) (string, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.endpoint != "" {
		return in.endpoint, nil
	}
	ic := in.is.cfg
	wellKnown := strings.TrimSuffix(ic.Issuer, "/") + "/.well-known/openid-configuration"
	var doc struct {
		Issuer   string `json:"issuer"`
		Endpoint string `json:"introspection_endpoint"`
	}
	if _, err := getJSON(ctx, in.client, wellKnown, maxDiscoveryBytes, &doc); err != nil {
		return "", unavailableNow("discovery: %v", err)
	}
	if doc.Issuer != ic.Issuer {
		return "", unavailableNow("discovery: %s says issuer %q, not %q", wellKnown, doc.Issuer, ic.Issuer)
	}
	u, err := url.Parse(doc.Endpoint)
	if doc.Endpoint == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", unavailableNow("discovery: %s has no http(s) introspection_endpoint", wellKnown)
	}
	if !ic.InsecureHTTP && insecureURL(doc.Endpoint) {
		return "", unavailableNow("discovery: introspection_endpoint %q is plain http on a host that is not loopback", doc.Endpoint)
	}
	in.endpoint = doc.Endpoint
	return in.endpoint, nil
}

// call makes one introspection request. Every failure to get a usable
// answer is unavailable (503); only an answer is a verdict.
func (in *introspector) call(ctx context.Context, raw string) (*verified, error) {
	start := in.now()
	select {
	case in.slots <- struct{}{}:
		defer func() { <-in.slots }()
	case <-ctx.Done():
		return nil, unavailableNow("%d calls already under way", cap(in.slots))
	}
	endpoint, err := in.resolve(ctx)
	if err != nil {
		return nil, err
	}
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
	if in.signer != nil {
		a, err := in.assertion(endpoint)
		if err != nil {
			return nil, unavailableNow("client assertion: %v", err)
		}
		form.Set("client_id", in.cfg.ClientID)
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", a)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, unavailableNow("%v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if in.cfg.JWTResponse {
		req.Header.Set("Accept", introspectJWTType)
	} else {
		req.Header.Set("Accept", "application/json")
	}
	if in.secret != "" { // RFC 6749 §2.3.1: form-encoded, then Basic
		req.SetBasicAuth(url.QueryEscape(in.cfg.ClientID), url.QueryEscape(in.secret))
	}
	resp, err := in.client.Do(req)
	if err != nil {
		// *url.Error names the endpoint, never the form.
		return nil, unavailableNow("POST %s: %v", redactURL(endpoint), errors.Unwrap(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, unavailableNow("POST %s: %s", redactURL(endpoint), resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIntrospectBytes+1))
	if err != nil {
		return nil, unavailableNow("POST %s: %v", redactURL(endpoint), err)
	}
	if len(body) > maxIntrospectBytes {
		return nil, unavailableNow("POST %s: answer over %d bytes", redactURL(endpoint), maxIntrospectBytes)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case mt == introspectJWTType:
		body, err = in.openJWT(ctx, string(body), start)
		if err != nil {
			return nil, err
		}
	case in.cfg.JWTResponse:
		return nil, unavailableNow("answer is %q, not a signed %s (jwt_response: true)", mt, introspectJWTType)
	case mt != "application/json":
		return nil, unavailableNow("answer is %q, not application/json", mt)
	}
	m, err := ParseIntrospection(body)
	if err != nil {
		return nil, unavailableNow("%v", err)
	}
	return in.judge(m)
}

// ParseIntrospection reads an introspection answer (RFC 7662 §2.2): a JSON
// object, no member twice, whose "active" is a JSON boolean. Anything else
// is an error: the answer is unusable, never a verdict.
func ParseIntrospection(body []byte) (map[string]any, error) {
	var m map[string]any
	if err := decodeObject(body, &m); err != nil {
		return nil, fmt.Errorf("answer is not a JSON object: %v", err)
	}
	if err := foldedClaimNames(m); err != nil {
		return nil, fmt.Errorf("answer: %v", err)
	}
	if _, ok := m["active"].(bool); !ok {
		return nil, errors.New(`answer has no boolean "active"`)
	}
	return m, nil
}

// judge turns a parsed answer into a verdict, checking its claims as a
// JWT's are checked.
func (in *introspector) judge(m map[string]any) (*verified, error) {
	if m["active"] != true {
		return nil, ErrInactive
	}
	claims := make(map[string]any, len(m))
	for k, v := range m {
		if k != "active" {
			claims[k] = v
		}
	}
	if hasCnf(claims) {
		// A sender-constrained token's binding is not checked on this
		// path: refused rather than accepted as a bearer token.
		return nil, fmt.Errorf("%w: introspected token is sender-constrained (cnf)", ErrClaims)
	}
	if err := accessTokenKind(claims); err != nil {
		return nil, err
	}
	t, err := tokenFromClaims(in.is.cfg, claims)
	if err != nil {
		return nil, err
	}
	if t.Iss != in.is.cfg.Issuer {
		return nil, fmt.Errorf("%w: introspection answer's iss is not the issuer", ErrClaims)
	}
	if err := in.is.checkClaims(t); err != nil {
		return nil, err
	}
	t.Introspected = true
	v := principalOf(t)
	v.issuer = in.is
	return v, nil
}

// The members by which introspection answers name the kind of token they
// describe, and the values (compared without case) that name an access
// token Warden accepts as a bearer token. Token endpoints ignore
// token_type_hint, so an answer about a refresh token (or an ID token)
// comes back active and must be refused by what it says:
//
//   - token_type (RFC 7662 §2.2: an RFC 6749 §7.1 token type; some servers
//     put the RFC 8693 token type identifier or its short name there):
//     Bearer, N_A (RFC 8693 "not applicable": a token that is no access
//     token type, as issued by exchange), access_token,
//     urn:ietf:params:oauth:token-type:access_token.
//   - token_use (Ory Hydra: access_token | refresh_token; Amazon Cognito:
//     access | id): access_token, access.
//   - typ (Keycloak: Bearer | Refresh | Offline | ID | Logout; RFC 9068's
//     at+jwt when an answer echoes a JWT's): Bearer, at+jwt,
//     application/at+jwt, access_token.
//
// Any other value, or one that is not a string, is refused: a value Warden
// does not know is not taken for an access token. "DPoP" (token_type or
// typ) names a sender-constrained token, whose binding this path does not
// check: refused like an answer with cnf.
var accessTokenKinds = map[string][]string{
	"token_type": {"bearer", "n_a", "access_token", "urn:ietf:params:oauth:token-type:access_token"},
	"token_use":  {"access_token", "access"},
	"typ":        {"bearer", "at+jwt", "application/at+jwt", "access_token"},
}

// accessTokenKind refuses an answer that names a token other than an
// access token Warden can accept as a bearer token (accessTokenKinds).
func accessTokenKind(claims map[string]any) error {
	for name, v := range claims {
		for member, allowed := range accessTokenKinds {
			// Any case of the member's name (Unicode folding, as a reader
			// matching names without case would): no answer Warden takes
			// has two (foldedClaimNames refuses that).
			if !strings.EqualFold(name, member) {
				continue
			}
			s, ok := v.(string)
			if !ok {
				return fmt.Errorf("%w: introspection answer's %s is not a string", ErrType, member)
			}
			if strings.EqualFold(s, "dpop") && member != "token_use" {
				return fmt.Errorf("%w: introspected token is sender-constrained (%s DPoP)", ErrClaims, member)
			}
			if !slices.ContainsFunc(allowed, func(a string) bool { return strings.EqualFold(a, s) }) {
				return fmt.Errorf("%w: introspection answer's %s does not name an access token", ErrType, member)
			}
		}
	}
	return nil
}

// openJWT verifies a JWT introspection answer (RFC 9701) with the issuer's
// keys and returns its token_introspection member. The answer names no
// token (RFC 9701 has no member binding it to the question), so a captured
// one would verify as the answer about any token: it is taken only when it
// was made for this request, its iat no earlier than the request's start
// (asked at start) and no later than now, each give or take the issuer's
// clock_skew; its exp and nbf, when present, hold too.
func (in *introspector) openJWT(ctx context.Context, jwt string, start time.Time) ([]byte, error) {
	h, _, ok := strings.Cut(jwt, ".")
	if !ok {
		return nil, unavailableNow("signed answer is not a compact JWS")
	}
	hb, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return nil, unavailableNow("signed answer's header is not base64url")
	}
	var hdr struct {
		Typ string `json:"typ"`
	}
	if err := json.Unmarshal(hb, &hdr); err != nil || !typMatches(hdr.Typ, "token-introspection+jwt") {
		return nil, unavailableNow("signed answer's typ is not token-introspection+jwt")
	}
	payload, err := in.is.keys.VerifySignature(ctx, jwt)
	if err != nil {
		if IsUnavailable(err) {
			return nil, err
		}
		return nil, unavailableNow("signed answer: %v", err)
	}
	var claims map[string]any
	if err := decodeObject(payload, &claims); err != nil {
		return nil, unavailableNow("signed answer: %v", err)
	}
	if claims["iss"] != in.is.cfg.Issuer {
		return nil, unavailableNow("signed answer's iss is not the issuer")
	}
	aud, ok := stringList(claims["aud"], false)
	if !ok || !slices.Contains(aud, in.cfg.ClientID) {
		return nil, unavailableNow("signed answer's aud is not the client id")
	}
	skew, now := in.is.cfg.Skew(), in.now()
	iat, ok := numericDate(claims["iat"])
	switch {
	case !ok:
		return nil, unavailableNow("signed answer has no numeric iat")
	case iat.Before(start.Add(-skew)):
		return nil, unavailableNow("signed answer was issued before the request (iat %s, asked %s, clock_skew %s): a replayed answer", iat.UTC().Format(time.RFC3339), start.UTC().Format(time.RFC3339), skew)
	case iat.After(now.Add(skew)):
		return nil, unavailableNow("signed answer is issued in the future (iat)")
	}
	if v, present := claims["exp"]; present {
		if exp, ok := numericDate(v); !ok || !now.Before(exp.Add(skew)) {
			return nil, unavailableNow("signed answer has expired (exp)")
		}
	}
	if v, present := claims["nbf"]; present {
		if nbf, ok := numericDate(v); !ok || now.Add(skew).Before(nbf) {
			return nil, unavailableNow("signed answer is not yet valid (nbf)")
		}
	}
	ti, ok := claims["token_introspection"].(map[string]any)
	if !ok {
		return nil, unavailableNow("signed answer has no token_introspection object")
	}
	return json.Marshal(ti)
}

// assertion is a client assertion (RFC 7523 §3) for the endpoint: iss and
// sub the client id, aud the issuer, valid a minute, a fresh jti.
func (in *introspector) assertion(string) (string, error) {
	now := in.now()
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	payload, err := json.Marshal(map[string]any{
		"iss": in.cfg.ClientID, "sub": in.cfg.ClientID, "aud": in.is.cfg.Issuer,
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": hex.EncodeToString(jti[:]),
	})
	if err != nil {
		return "", err
	}
	jws, err := in.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// lruCache holds introspection verdicts by token hash: a count bound, the
// least recently used dropped first, each entry until its time.
type lruCache struct {
	mu   sync.Mutex
	max  int
	ll   *list.List
	byID map[[32]byte]*list.Element
}

type lruEntry struct {
	key   [32]byte
	v     *verified
	err   error
	until time.Time
}

func newLRU(n int) *lruCache {
	return &lruCache{max: n, ll: list.New(), byID: map[[32]byte]*list.Element{}}
}

func (c *lruCache) get(key [32]byte, now time.Time) (*verified, error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byID[key]
	if !ok {
		return nil, nil, false
	}
	en := e.Value.(*lruEntry)
	if !now.Before(en.until) {
		c.ll.Remove(e)
		delete(c.byID, key)
		return nil, nil, false
	}
	c.ll.MoveToFront(e)
	return en.v, en.err, true
}

func (c *lruCache) put(key [32]byte, v *verified, err error, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byID[key]; ok {
		c.ll.Remove(e)
		delete(c.byID, key)
	}
	for c.ll.Len() >= c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.byID, old.Value.(*lruEntry).key)
	}
	c.byID[key] = c.ll.PushFront(&lruEntry{key: key, v: v, err: err, until: until})
}

func (c *lruCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// readPrivateKeyPEM reads a PKCS#8, PKCS#1 (RSA) or SEC 1 (EC) private key.
func readPrivateKeyPEM(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	var key any
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", path)
	}
	return s, nil
}

func defaultAlgFor(k crypto.Signer) jose.SignatureAlgorithm {
	switch k.(type) {
	case *ecdsa.PrivateKey:
		return jose.ES256
	case ed25519.PrivateKey:
		return jose.EdDSA
	case *rsa.PrivateKey:
		return jose.RS256
	}
	return jose.RS256
}

// numericDate reads a JSON NumericDate (json.Number, as decodeObject gives
// numbers): seconds since the epoch, fractions allowed.
func numericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}
