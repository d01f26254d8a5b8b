package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardenauthz/warden/internal/jsonnames"
	"github.com/wardenauthz/warden/internal/token"
)

// issuer verifies tokens of one configured issuer.
type issuer struct {
	cfg       IssuerConfig
	keys      keyVerifier
	verifier  *oidc.IDTokenVerifier
	algs      map[string]bool
	audiences map[string]bool
	now       func() time.Time
}

// keyVerifier is the oidc.KeySet plus readiness.
type keyVerifier interface {
	oidc.KeySet
	ready() bool
}

type errSlotKey struct{}

// errSlot carries a KeySet's typed error past go-oidc, which flattens it.
type errSlot struct{ err error }

func setSlot(ctx context.Context, err error) error {
	if s, ok := ctx.Value(errSlotKey{}).(*errSlot); ok {
		s.err = err
	}
	return err
}

// slotted wraps a KeySet so its error reaches the slot in ctx.
type slotted struct{ keyVerifier }

func (s slotted) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	p, err := s.keyVerifier.VerifySignature(ctx, jwt)
	if err != nil {
		return nil, setSlot(ctx, err)
	}
	return p, nil
}

func newIssuer(cfg IssuerConfig, keys keyVerifier, now func() time.Time) *issuer {
	is := &issuer{cfg: cfg, keys: keys, now: now, algs: map[string]bool{}, audiences: map[string]bool{}}
	for _, a := range cfg.Algorithms {
		is.algs[a] = true
	}
	for _, a := range cfg.Audiences {
		is.audiences[a] = true
	}
	is.verifier = oidc.NewVerifier(cfg.Issuer, slotted{keys}, &oidc.Config{
		SkipClientIDCheck:    true, // audiences checked below, against a list
		SkipExpiryCheck:      true, // exp/nbf checked below, with our skew
		SupportedSigningAlgs: cfg.Algorithms,
		Now:                  now,
	})
	return is
}

// newRemoteKeys builds the key set of an issuer fetched over HTTP, with
// discovery unless jwks_uri is given.
func newRemoteKeys(cfg IssuerConfig, client *http.Client, now func() time.Time, observe FetchObserver, log *slog.Logger) *keySet {
	var algs []jose.SignatureAlgorithm
	for _, a := range cfg.Algorithms {
		algs = append(algs, jose.SignatureAlgorithm(a))
	}
	var (
		mu      sync.Mutex
		jwksURI = cfg.JWKSURI
	)
	resolve := func(ctx context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if jwksURI != "" {
			return jwksURI, nil
		}
		wellKnown := strings.TrimSuffix(cfg.Issuer, "/") + "/.well-known/openid-configuration"
		doc, err := discover(ctx, client, wellKnown, cfg)
		if err != nil {
			return wellKnown, err
		}
		jwksURI = doc
		return jwksURI, nil
	}
	// Redirects must not downgrade the keys to plain http either.
	c := *client
	next := client.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("stopped after 5 redirects")
		}
		if !cfg.InsecureHTTP && insecureURL(req.URL.String()) {
			return fmt.Errorf("redirect to %s refused: plain http on a host that is not loopback (set insecure_http: true to allow it)", req.URL.Redacted())
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	client = &c
	return &keySet{name: cfg.Name, issuer: redactURL(cfg.Issuer), url: resolve, client: client, algs: algs, now: now, observe: observe, log: log, refresh: cfg.JWKSRefresh}
}

// discover reads the discovery document at wellKnown and returns its
// jwks_uri, after checking that it names the configured issuer exactly.
func discover(ctx context.Context, client *http.Client, wellKnown string, cfg IssuerConfig) (string, error) {
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	var raw json.RawMessage
	if _, err := getJSON(ctx, client, wellKnown, maxDiscoveryBytes, &raw); err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	// Read as go-oidc and every other client read it: no member twice,
	// names exactly ("ISSUER" or "Jwks_Uri" are no members).
	if err := checkDuplicates(raw); err != nil {
		return "", fmt.Errorf("discovery: %s: %w", wellKnown, err)
	}
	if err := jsonnames.Exact(raw, reflect.TypeOf(&doc), ""); err != nil {
		return "", fmt.Errorf("discovery: %s: %w", wellKnown, err)
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return "", fmt.Errorf("discovery: %s: %w", wellKnown, err)
	}
	if doc.Issuer != cfg.Issuer {
		if len(doc.Issuer) > 512 {
			doc.Issuer = doc.Issuer[:512] + "..."
		}
		hint := ""
		if strings.TrimRight(doc.Issuer, "/") == strings.TrimRight(cfg.Issuer, "/") {
			hint = " (they differ only in the trailing slash, which counts: tokens carry the provider's form)"
		}
		return "", fmt.Errorf("discovery: %s says issuer %q, but the configured issuer is %q: they must be equal%s; set issuer: %q",
			wellKnown, doc.Issuer, cfg.Issuer, hint, doc.Issuer)
	}
	if doc.JWKSURI == "" {
		return "", fmt.Errorf("discovery: %s has no jwks_uri", wellKnown)
	}
	if len(doc.JWKSURI) > 2048 {
		return "", fmt.Errorf("discovery: %s: jwks_uri over 2048 bytes", wellKnown)
	}
	u, err := url.Parse(doc.JWKSURI)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("discovery: %s: jwks_uri %q is not an http(s) URL", wellKnown, doc.JWKSURI)
	}
	if !cfg.InsecureHTTP && insecureURL(doc.JWKSURI) {
		return "", fmt.Errorf("discovery: %s: jwks_uri %q is plain http on a host that is not loopback (set insecure_http: true to allow it)", wellKnown, doc.JWKSURI)
	}
	return doc.JWKSURI, nil
}

// verify checks signature and claims of a pre-parsed token.
func (is *issuer) verify(ctx context.Context, raw string, p *parsed) (*Token, error) {
	if !is.algs[p.header.Alg] {
		return nil, fmt.Errorf("%w: %s", ErrAlgorithm, p.header.Alg)
	}
	if is.cfg.RequireTyp != "" && !typMatches(p.header.Typ, is.cfg.RequireTyp) {
		return nil, fmt.Errorf("%w: typ %q, want %q", ErrType, p.header.Typ, is.cfg.RequireTyp)
	}
	// The claims are checked before the signature: a token that fails them
	// (expired above all) is refused without spending a signature
	// verification on it. Both are refusals; only the reason differs.
	t, err := tokenFromClaims(is.cfg, p.claims)
	if err != nil {
		return nil, err
	}
	if err := is.checkClaims(t); err != nil {
		return nil, err
	}
	slot := &errSlot{}
	if _, err := is.verifier.Verify(context.WithValue(ctx, errSlotKey{}, slot), raw); err != nil {
		if slot.err != nil {
			return nil, slot.err
		}
		return nil, fmt.Errorf("%w: %v", ErrClaims, err)
	}
	return t, nil
}

// typMatches compares typ values as RFC 8725 says: case-insensitively, with
// an optional "application/" prefix.
func typMatches(got, want string) bool {
	norm := func(s string) string { return strings.TrimPrefix(strings.ToLower(s), "application/") }
	return norm(got) == norm(want)
}

// checkClaims does what go-oidc does not: exp and nbf within our skew, iat
// not in the future, audience from a list, azp/client_id consistency.
func (is *issuer) checkClaims(t *Token) error {
	now := is.now()
	skew := is.cfg.Skew()
	if t.Exp.IsZero() {
		return fmt.Errorf("%w: no exp", ErrClaims)
	}
	if !now.Before(t.Exp.Add(skew)) {
		return ErrExpired
	}
	if !t.Nbf.IsZero() && now.Add(skew).Before(t.Nbf) {
		return ErrNotYetValid
	}
	if !t.Iat.IsZero() && now.Add(skew).Before(t.Iat) {
		return ErrIssuedInFuture
	}
	if !slices.ContainsFunc(t.Aud, func(a string) bool { return is.audiences[a] }) {
		return ErrAudience
	}
	azp, _ := t.Claims["azp"].(string)
	cid, _ := t.Claims[is.cfg.Claims.ClientID].(string)
	if azp != "" && cid != "" && azp != cid {
		return fmt.Errorf("%w: azp and %s differ", ErrClaims, is.cfg.Claims.ClientID)
	}
	return nil
}

// unixSeconds reads a NumericDate claim in whole seconds, 0 to 1e11 (the
// zero time and false outside that).
func unixSeconds(n json.Number) (time.Time, bool) {
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// tokenFromClaims extracts the registered and configured claims.
func tokenFromClaims(cfg IssuerConfig, claims map[string]any) (*Token, error) {
	t := &Token{View: token.View{Claims: claims}, Issuer: cfg.Name}
	var err error
	str := func(name string) string {
		v, ok := claims[name]
		if !ok {
			return ""
		}
		s, ok := v.(string)
		if !ok && err == nil {
			err = fmt.Errorf("%w: %s is not a string", ErrClaims, name)
		}
		return s
	}
	tm := func(name string) time.Time {
		v, ok := claims[name]
		if !ok {
			return time.Time{}
		}
		n, ok := v.(json.Number)
		if !ok {
			if err == nil {
				err = fmt.Errorf("%w: %s is not a number", ErrClaims, name)
			}
			return time.Time{}
		}
		tv, ok := unixSeconds(n)
		if !ok && err == nil {
			err = fmt.Errorf("%w: %s is out of range", ErrClaims, name)
		}
		return tv
	}
	t.Iss = str("iss")
	t.Sub = str("sub")
	t.Jti = str("jti")
	t.Acr = str("acr")
	t.ClientID = str(cfg.Claims.ClientID)
	if t.ClientID == "" {
		t.ClientID = str("azp")
	}
	t.Exp = tm("exp")
	t.Nbf = tm("nbf")
	t.Iat = tm("iat")
	t.AuthTime = tm("auth_time")
	if err != nil {
		return nil, err
	}
	var ok bool
	if t.Aud, ok = stringList(claims["aud"], false); !ok {
		return nil, fmt.Errorf("%w: aud is not a string or array of strings", ErrClaims)
	}
	if t.Amr, ok = stringList(claims["amr"], false); !ok {
		return nil, fmt.Errorf("%w: amr is not an array of strings", ErrClaims)
	}
	if t.Groups, ok = stringList(claims[cfg.Claims.Groups], true); !ok {
		return nil, fmt.Errorf("%w: %s is not a string or array of strings", ErrClaims, cfg.Claims.Groups)
	}
	scopes := claims[cfg.Claims.Scopes]
	if scopes == nil && cfg.Claims.Scopes == "scope" {
		scopes = claims["scp"] // Hydra, Entra
	}
	if t.Scopes, ok = stringList(scopes, true); !ok {
		return nil, fmt.Errorf("%w: %s is not a string or array of strings", ErrClaims, cfg.Claims.Scopes)
	}
	if t.Sub == "" && t.ClientID == "" {
		return nil, fmt.Errorf("%w: neither sub nor client id", ErrClaims)
	}
	// Ids become principals, groups, identity headers and revocation keys:
	// one with a control character (or, for sub and client id, whitespace
	// at either end) is never a principal, since no record, header or
	// `warden revoke --subject` could name it (RevocationSubject refuses
	// the same).
	for _, c := range [...]struct{ name, v string }{{"sub", t.Sub}, {cfg.Claims.ClientID, t.ClientID}} {
		if err := PrincipalIDError(c.v); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrClaims, c.name, err)
		}
	}
	for _, g := range t.Groups {
		if strings.ContainsFunc(g, unicode.IsControl) {
			return nil, fmt.Errorf("%w: %s: control character in a group", ErrClaims, cfg.Claims.Groups)
		}
	}
	if t.Cnf, err = confirmation(claims); err != nil {
		return nil, err
	}
	t.Skew = cfg.Skew()
	t.Subject = cfg.Name + "|" + t.Sub
	return t, nil
}

// stringList accepts a string (split on spaces and commas when split is set)
// or an array of strings. A missing value is an empty list.
func stringList(v any, split bool) ([]string, bool) {
	switch v := v.(type) {
	case nil:
		return nil, true
	case string:
		if !split {
			return []string{v}, true
		}
		return strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' }), true
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}
