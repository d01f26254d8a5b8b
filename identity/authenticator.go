package identity

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode"
)

// ErrNoCredentials is returned when nothing identifies the caller and
// anonymous access is disabled.
var ErrNoCredentials = errors.New("no credentials")

// Options are the dependencies of an Authenticator.
type Options struct {
	// HTTPClient fetches discovery documents and JWKS. Default: 5 s timeout.
	HTTPClient *http.Client
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Observe is told the outcome of every key fetch.
	Observe FetchObserver
	// Logger gets key fetch failures (at most one line per issuer per 30 s)
	// and recoveries. Default: discard.
	Logger *slog.Logger
	// DevKey is the dev issuer's key; required when the dev issuer is enabled.
	DevKey *rsa.PrivateKey
	// Replay is the DPoP replay cache (the store's, shared by replicas).
	// Nil: DPoP-bound tokens are refused as unjudgeable (503).
	Replay ReplayCache
	// DPoPNonceKey keys the DPoP nonces of issuers with dpop_nonce; every
	// replica needs the same one (identity.dpop_nonce_key_file). Nil: a
	// random key, good for one replica.
	DPoPNonceKey []byte
	// TestKey, when set, replaces the keys of every issuer (the dev issuer's
	// too) with this one RS256 key, and fetches nothing: `warden policy
	// test` verifies the tokens it signs with SignStatic offline, through
	// every other check of the issuer (issuer, audience, typ, times, claims).
	TestKey *rsa.PrivateKey
	// APIKeyLookup reads API key entries from Redis (identity.api_keys.redis).
	APIKeyLookup APIKeyLookup
}

// Authenticator verifies credentials. It is safe for concurrent use.
type Authenticator struct {
	cfg       Config
	issuers   map[string]*issuer // by iss
	remote    []*keySet
	cache     *tokenCache
	expired   *expiredCache
	trust     map[string]bool
	anonymous bool
	now       func() time.Time
	replay    ReplayCache
	nonces    *nonces
	// introspect are the issuers that introspect all their tokens (by iss);
	// opaque the one that introspects tokens that are not JWTs.
	introspect map[string]*introspector
	opaque     *introspector
	apiKeys    *apiKeys
}

// New builds an Authenticator. It does no I/O: call Start to fetch keys.
func New(cfg Config, o Options) (*Authenticator, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: fetchTimeout}
	}
	if o.Observe == nil {
		o.Observe = func(string, string) {}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{
		cfg:       cfg,
		issuers:   map[string]*issuer{},
		cache:     newTokenCache(cfg.CacheSize),
		expired:   &expiredCache{},
		trust:     map[string]bool{},
		anonymous: *cfg.Anonymous,
		now:       o.Now,
		replay:    o.Replay,
		nonces:    &nonces{key: o.DPoPNonceKey},
	}
	if len(a.nonces.key) == 0 {
		a.nonces.key = make([]byte, 32)
		_, _ = rand.Read(a.nonces.key)
	}
	for _, td := range cfg.Workloads.TrustDomains {
		a.trust[td] = true
	}
	var test *staticKeys
	if o.TestKey != nil {
		test = keysOf(o.TestKey)
	}
	for _, ic := range cfg.Issuers {
		if test != nil {
			ic.Algorithms = []string{"RS256"}
			a.issuers[ic.Issuer] = newIssuer(ic, test, o.Now)
			continue
		}
		ks := newRemoteKeys(ic, o.HTTPClient, o.Now, o.Observe, o.Logger)
		a.remote = append(a.remote, ks)
		is := newIssuer(ic, ks, o.Now)
		a.issuers[ic.Issuer] = is
		if ic.Introspection != nil {
			in, err := newIntrospector(is, o.HTTPClient, o.Now, o.Logger)
			if err != nil {
				return nil, err
			}
			if ic.Introspection.Tokens == IntrospectAll {
				if a.introspect == nil {
					a.introspect = map[string]*introspector{}
				}
				a.introspect[ic.Issuer] = in
			}
			if ic.Introspection.Tokens == IntrospectOpaque {
				a.opaque = in
			}
		}
	}
	if cfg.APIKeys != nil {
		k, err := newAPIKeys(*cfg.APIKeys, o.APIKeyLookup, o.Logger)
		if err != nil {
			return nil, err
		}
		a.apiKeys = k
	}
	if cfg.DevIssuer.Enabled {
		keys := test
		if keys == nil {
			if o.DevKey == nil {
				return nil, errors.New("identity: dev issuer enabled but no key given")
			}
			keys = keysOf(o.DevKey)
		}
		a.issuers[DevIssuerURL] = newIssuer(DevIssuer(), keys, o.Now)
	}
	return a, nil
}

// Start fetches every issuer's keys in the background until ctx ends:
// retried with backoff until the first success, then again whenever the
// JWKS's cache lifetime (bounded by jwks_refresh) runs out.
func (a *Authenticator) Start(ctx context.Context) {
	for _, ks := range a.remote {
		go ks.background(ctx, time.After)
	}
	if a.apiKeys != nil {
		go a.apiKeys.watch(ctx)
	}
}

// NotReady lists the issuers whose keys have never been fetched.
func (a *Authenticator) NotReady() []string {
	var out []string
	for _, ks := range a.remote {
		if !ks.ready() {
			out = append(out, ks.name)
		}
	}
	return out
}

// KeyStatus reports the key state of every issuer fetched over HTTP, in
// configuration order.
func (a *Authenticator) KeyStatus() []KeyStatus {
	out := make([]KeyStatus, 0, len(a.remote))
	for _, ks := range a.remote {
		out = append(out, ks.status())
	}
	return out
}

// Input is what identifies a caller in a CheckRequest.
type Input struct {
	// Authorization is the authorization header value ("" when absent); its
	// type keeps it out of logs.
	Authorization Credential
	// PeerPrincipal is Envoy's source.principal (the peer certificate's URI SAN).
	PeerPrincipal string
	// XFCC is the x-forwarded-client-cert header, used only when configured
	// (workloads.trust_xfcc) and PeerPrincipal is empty.
	XFCC string
	// Certificate is Envoy's source.certificate: the peer certificate as
	// URL-encoded PEM (include_peer_certificate), "" when none.
	Certificate string
	// DPoP is the DPoP header (repeated ones joined with ","), "" when
	// absent.
	DPoP string
	// Request is the HTTP request, which a DPoP proof must name.
	Request Request
}

// Authenticate returns who is calling. A presented but invalid token is an
// error (wrapping one of the sentinels), never anonymous.
func (a *Authenticator) Authenticate(ctx context.Context, in Input) (Identity, error) {
	var id Identity
	peer := in.PeerPrincipal
	if peer == "" && a.cfg.Workloads.TrustXFCC && in.XFCC != "" {
		peer = XFCCURI(in.XFCC)
	}
	if peer != "" {
		if w, ok := ParseSPIFFE(peer); ok && a.trust[w.TrustDomain] {
			id.Peer = &w
		}
	}
	scheme, raw, present := authorization(string(in.Authorization))
	if present {
		v, is, err := a.verifyToken(ctx, raw)
		if err == nil {
			id.Credential, err = a.checkBinding(ctx, is, in, scheme, raw, v.token)
			if err == nil && v.token.Introspected {
				id.Credential = CredentialIntrospected
			}
		} else if scheme == SchemeDPoP && !IsUnavailable(err) {
			// A DPoP request is answered with the DPoP challenge (RFC
			// 9449 §7.1), whatever is wrong with its token.
			err = &DPoPChallenge{Err: err}
		}
		if err != nil {
			return Identity{Peer: id.Peer}, err
		}
		id.Kind, id.ID, id.Groups, id.Token = v.kind, v.id, v.groups, v.token
		return id, nil
	}
	if key, present := apiKeyCredential(string(in.Authorization)); present {
		// An ApiKey attempt is a credential attempt: without identity.api_keys
		// it is refused, never taken for no credentials (anonymous) and
		// never forwarded as if nobody had checked it.
		if a.apiKeys == nil {
			return Identity{Peer: id.Peer}, fmt.Errorf("%w: API keys are not configured (identity.api_keys)", ErrAPIKey)
		}
		if key == "" {
			return Identity{Peer: id.Peer}, fmt.Errorf("%w: malformed ApiKey authorization", ErrAPIKey)
		}
		k, err := a.apiKeys.verify(ctx, key)
		if err != nil {
			return Identity{Peer: id.Peer}, err
		}
		id.Kind, id.ID, id.APIKey, id.Credential = APIKey, k.Name, k, CredentialAPIKey
		id.Groups = append(id.Groups, k.Parents...)
		return id, nil
	}
	if id.Peer != nil {
		id.Kind, id.ID = Workload, id.Peer.ID
		return id, nil
	}
	if !a.anonymous {
		return id, ErrNoCredentials
	}
	id.Kind, id.ID = Anonymous, "anonymous"
	return id, nil
}

// authorization extracts the token of a Bearer authorization header (RFC 6750,
// RFC 9110 §11.4: credentials = auth-scheme 1*SP token68, the scheme
// case-insensitive). present is true for every attempt at Bearer
// credentials, well-formed or not: a value, or any of its comma-separated
// elements (repeated headers are joined with ","), that starts — after any
// whitespace — with "bearer" in any case not followed by another token
// character, so "Bearer<TAB>x", "bearer\u00a0x", "BEARER,x" and
// "Basic y,Bearer x" all are. Only the exact grammar yields a token; every
// other attempt yields "" (a malformed token, 401), never "no credential".
// Other schemes ("Basic", "Bearerx") are not credentials Warden judges.
//
// The DPoP scheme (RFC 9449 §7.1) is read the same way: scheme is
// SchemeBearer or SchemeDPoP for a well-formed credential.
func authorization(h string) (scheme, tok string, present bool) {
	return credentials(h, SchemeBearer, SchemeDPoP)
}

// credentials reads h as authorization() does, for the given schemes: the
// scheme and token68 of a well-formed credential, or present alone for
// any other attempt at one of them.
func credentials(h string, schemes ...string) (scheme, tok string, present bool) {
	v := strings.Trim(h, " \t") // a field value's optional whitespace
	for _, s := range schemes {
		if len(v) > len(s) && strings.EqualFold(v[:len(s)], s) && v[len(s)] == ' ' {
			t := strings.TrimLeft(v[len(s)+1:], " ")
			if isToken68(t) {
				return s, t, true
			}
		}
	}
	for e := range strings.SplitSeq(h, ",") {
		for _, s := range schemes {
			if schemeAttempt(e, s) {
				return "", "", true
			}
		}
	}
	return "", "", false
}

// Authorization schemes Warden judges.
const (
	SchemeBearer = "Bearer"
	SchemeDPoP   = "DPoP"
)

// schemeAttempt reports whether e, after leading whitespace of any kind,
// is the scheme s (any case) ending there: at the end, or at a character
// that cannot continue a token (whitespace, a separator, a control or
// non-ASCII byte).
func schemeAttempt(e, s string) bool {
	e = strings.TrimLeftFunc(e, unicode.IsSpace)
	return len(e) >= len(s) && strings.EqualFold(e[:len(s)], s) && (len(e) == len(s) || !isTchar(e[len(s)]))
}

// isTchar reports whether c is an RFC 9110 tchar.
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c < 0x80 && strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isToken68 reports whether t is an RFC 9110 token68:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68(t string) bool {
	i := 0
	// Eight bytes a round, one branch for them: a bearer token is
	// hundreds of bytes, all of them token68 but the padding.
	for ; i+8 <= len(t); i += 8 {
		c := t[i : i+8]
		if token68Chars[c[0]]&token68Chars[c[1]]&token68Chars[c[2]]&token68Chars[c[3]]&
			token68Chars[c[4]]&token68Chars[c[5]]&token68Chars[c[6]]&token68Chars[c[7]] == 0 {
			break
		}
	}
	for i < len(t) && token68Chars[t[i]] != 0 {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(t); i++ {
		if t[i] != '=' {
			return false
		}
	}
	return true
}

// token68Chars are the bytes of a token68 before its "=" padding.
var token68Chars = byteSet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/")

// hexDigits are the hexadecimal digits in either case.
var hexDigits = byteSet("0123456789abcdefABCDEF")

// byteSet is the table of the bytes in s: 1 for each of them, 0 for others.
func byteSet(s string) (t [256]uint8) {
	for i := 0; i < len(s); i++ {
		t[s[i]] = 1
	}
	return t
}

func (a *Authenticator) verifyToken(ctx context.Context, raw string) (*verified, *issuer, error) {
	if len(raw) > a.cfg.MaxTokenBytes {
		return nil, nil, fmt.Errorf("%w: %d bytes over the %d byte limit", ErrTooLarge, len(raw), a.cfg.MaxTokenBytes)
	}
	if looksLikeAPIKey(raw) {
		// Refused before any cache, introspection or parse: a key's secret
		// never goes to an introspection endpoint (nor anywhere else).
		return nil, nil, fmt.Errorf("%w: an API key is sent as \"Authorization: ApiKey <key>\", never as a bearer token", ErrMalformed)
	}
	now := a.now()
	key := hashToken(raw)
	if v := a.cache.get(key, now); v != nil {
		return v, v.issuer, nil
	}
	if a.opaque != nil && !looksLikeJWT(raw) {
		return a.opaque.verify(ctx, raw)
	}
	if a.expired.expired(key, now) {
		// The refusal below, without the parse: what leads to it depends
		// only on the token's bytes and the configuration, and the clock
		// is still at or past the token's exp + skew.
		return nil, nil, ErrExpired
	}
	p, err := preparse(raw, a.cfg.MaxTokenBytes)
	if err != nil {
		return nil, nil, err
	}
	if in, ok := a.introspect[p.iss]; ok {
		// A sender-constrained JWT is refused before it is introspected:
		// the answer need not repeat the JWT's cnf, and the binding is
		// checked only on the JWT path (fail closed; see SECURITY.md).
		if hasCnf(p.claims) {
			return nil, nil, fmt.Errorf("%w: sender-constrained JWT (cnf) at an issuer whose JWTs are introspected (introspection.tokens: all)", ErrClaims)
		}
		return in.verify(ctx, raw)
	}
	is, ok := a.issuers[p.iss]
	if !ok {
		return nil, nil, ErrUnknownIssuer // never discovery for an unlisted issuer
	}
	t, err := is.verify(ctx, raw, p)
	if err != nil {
		if err == ErrExpired { // checkClaims's own refusal, never one wrapping it
			// checkClaims refuses an expired token first, after the
			// checks of its bytes alone (preparse, alg, typ, claim
			// types): the same token is refused the same way for as
			// long as the clock is past exp + skew.
			if et, terr := tokenFromClaims(is.cfg, p.claims); terr == nil {
				a.expired.put(key, et.Exp.Add(is.cfg.Skew()))
			}
		}
		return nil, nil, err
	}
	v := principalOf(t)
	v.issuer = is
	a.cache.put(key, v, t.Exp.Add(is.cfg.Skew()), now)
	return v, is, nil
}

// checkBinding enforces the token's sender constraint on this request
// (verified tokens are cached; their bindings are checked on every use)
// and returns the credential's kind.
func (a *Authenticator) checkBinding(ctx context.Context, is *issuer, in Input, scheme, raw string, t *Token) (CredentialKind, error) {
	refuse := func(format string, args ...any) (CredentialKind, error) {
		return "", &DPoPChallenge{Err: fmt.Errorf("%w: "+format, append([]any{ErrDPoPBound}, args...)...), Algs: is.cfg.DPoPAlgorithms}
	}
	kind := CredentialJWT
	switch jkt := t.Cnf.JKT; {
	case jkt != "" && is.cfg.DPoP == DPoPOff:
		return refuse("issuer %s does not accept DPoP-bound tokens (dpop: off)", is.cfg.Name)
	case jkt != "" && scheme != SchemeDPoP:
		return refuse("DPoP-bound token presented as a bearer token")
	case jkt == "" && scheme == SchemeDPoP:
		return refuse("token presented with DPoP is not DPoP-bound")
	case jkt == "" && is.cfg.DPoP == DPoPRequired:
		return refuse("issuer %s requires DPoP-bound tokens", is.cfg.Name)
	case jkt != "":
		if err := a.checkProof(ctx, is, in, raw, jkt); err != nil {
			return "", err
		}
		kind = CredentialDPoP
	}
	if x5t := t.Cnf.X5TS256; x5t != "" {
		if err := a.checkCertBinding(in, x5t); err != nil {
			return "", err
		}
		if kind == CredentialJWT {
			kind = CredentialMTLSBound
		}
	}
	return kind, nil
}

// principalOf derives the principal of a verified token: a Client when the
// token has no user (client credentials: no sub, or sub == client id). It
// seals the token's view with it: after this the token is only read.
func principalOf(t *Token) *verified {
	v := &verified{token: t, kind: User, id: t.Subject}
	if t.Sub == "" || t.Sub == t.ClientID {
		v.kind, v.id = Client, t.Issuer+"|"+t.ClientID
	}
	for _, g := range t.Groups {
		v.groups = append(v.groups, t.Issuer+"|"+g)
	}
	t.Seal(v.kind.String(), v.id)
	return v
}

// looksLikeJWT reports whether raw has the shape of a compact JWS or JWE
// (two or four dots): such a token is judged as a JWT, never sent to an
// introspection endpoint for its form alone. Opaque tokens may hold a dot
// (Hydra's do), never two.
func looksLikeJWT(raw string) bool {
	n := strings.Count(raw, ".")
	return n == 2 || n == 4
}

// hasCnf reports whether claims hold a confirmation (RFC 7800 cnf) member,
// in any case of its name.
func hasCnf(claims map[string]any) bool {
	for k := range claims {
		if strings.EqualFold(k, "cnf") {
			return true
		}
	}
	return false
}

// looksLikeAPIKey reports whether a bearer token is, or holds, a Warden API
// key: it starts with the key prefix in any case ("wk_", "WK_"), or holds
// a whole key's shape anywhere ("wk_" + 16 hex + "_" + 64 hex, any case).
//
// It runs on every bearer token before the cache, so it looks only where
// a key can start: at each "_" (found by a fast byte search) preceded by
// "wk" in any case. The prefix is ASCII in any case and the rest hex
// digits and "_", so no Unicode folding can make a key of other bytes
// (apikey_shape_test.go compares it with the folding original).
func looksLikeAPIKey(raw string) bool {
	if len(raw) >= len(apiKeyPrefix) && raw[0]|0x20 == 'w' && raw[1]|0x20 == 'k' && raw[2] == '_' {
		return true
	}
	const n = len(apiKeyPrefix) + apiKeyIDLen + 1 + apiKeySecretLen
	// A key at i has its prefix's "_" at i+2, and i+n <= len(raw).
	last := len(raw) - n + 2
	for off := 2; off <= last; {
		j := strings.IndexByte(raw[off:last+1], '_')
		if j < 0 {
			return false
		}
		j += off
		if raw[j-2]|0x20 == 'w' && raw[j-1]|0x20 == 'k' && isKeyTail(raw[j+1:j-2+n]) {
			return true
		}
		off = j + 1
	}
	return false
}

// isKeyTail reports whether t is an API key after its prefix in any case:
// 16 hex digits, "_", 64 hex digits.
func isKeyTail(t string) bool {
	if len(t) != apiKeyIDLen+1+apiKeySecretLen || t[apiKeyIDLen] != '_' {
		return false
	}
	for i := 0; i < len(t); i++ {
		if i != apiKeyIDLen && hexDigits[t[i]] == 0 {
			return false
		}
	}
	return true
}
