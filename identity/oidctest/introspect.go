package oidctest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// introspection is the issuer's introspection endpoint (RFC 7662, with
// RFC 9701 signed answers when asked for them).
type introspection struct {
	enabled atomic.Bool
	calls   atomic.Int64
	down    atomic.Bool
	delay   atomic.Int64 // ns
	active  atomic.Int64 // requests under way
	maxUp   atomic.Int64 // most requests under way at once
	signer  atomic.Pointer[Key]

	mu         sync.Mutex
	clientID   string
	secret     string           // client_secret_basic, when set
	clientKey  *jose.JSONWebKey // private_key_jwt, when set
	tokens     map[string]map[string]any
	raw        map[string][]byte // answers given as they are
	forms      []map[string][]string
	authFailed int
}

// EnableIntrospection serves /introspect (and names it in discovery) for
// the client clientID authenticating with secret (client_secret_basic).
func (is *Issuer) EnableIntrospection(clientID, secret string) {
	is.intro.mu.Lock()
	is.intro.clientID, is.intro.secret = clientID, secret
	is.intro.mu.Unlock()
	is.intro.enabled.Store(true)
}

// EnableIntrospectionKey serves /introspect for the client clientID
// authenticating with a client assertion (private_key_jwt, RFC 7523)
// signed by key.
func (is *Issuer) EnableIntrospectionKey(clientID string, key jose.JSONWebKey) {
	is.intro.mu.Lock()
	is.intro.clientID, is.intro.clientKey = clientID, &key
	is.intro.mu.Unlock()
	is.intro.enabled.Store(true)
}

// Opaque issues an opaque token whose introspection answers active: true
// with claims.
func (is *Issuer) Opaque(claims map[string]any) string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	tok := "op_" + hex.EncodeToString(b[:])
	is.intro.mu.Lock()
	defer is.intro.mu.Unlock()
	if is.intro.tokens == nil {
		is.intro.tokens = map[string]map[string]any{}
	}
	is.intro.tokens[tok] = claims
	return tok
}

// SetIntrospectionAnswer makes the endpoint answer 200 with body (as JSON)
// for tok.
func (is *Issuer) SetIntrospectionAnswer(tok string, body []byte) {
	is.intro.mu.Lock()
	defer is.intro.mu.Unlock()
	if is.intro.raw == nil {
		is.intro.raw = map[string][]byte{}
	}
	is.intro.raw[tok] = body
}

// Deactivate makes tok's introspection answer active: false.
func (is *Issuer) Deactivate(tok string) {
	is.intro.mu.Lock()
	defer is.intro.mu.Unlock()
	delete(is.intro.tokens, tok)
}

// SetIntrospectionDown makes the endpoint answer 503.
func (is *Issuer) SetIntrospectionDown(down bool) { is.intro.down.Store(down) }

// SetIntrospectionDelay delays every introspection answer.
func (is *Issuer) SetIntrospectionDelay(d time.Duration) { is.intro.delay.Store(int64(d)) }

// IntrospectionMaxInFlight is the most introspection requests that were
// under way at once.
func (is *Issuer) IntrospectionMaxInFlight() int64 { return is.intro.maxUp.Load() }

// SetIntrospectionSigner signs JWT answers with k instead of the first
// published key.
func (is *Issuer) SetIntrospectionSigner(k Key) { is.intro.signer.Store(&k) }

// IntrospectionCalls counts introspection requests.
func (is *Issuer) IntrospectionCalls() int64 { return is.intro.calls.Load() }

// IntrospectionForms are the forms of the requests so far (tests check
// what a client sent).
func (is *Issuer) IntrospectionForms() []map[string][]string {
	is.intro.mu.Lock()
	defer is.intro.mu.Unlock()
	return append([]map[string][]string(nil), is.intro.forms...)
}

func (is *Issuer) introspect(w http.ResponseWriter, r *http.Request) {
	in := &is.intro
	in.calls.Add(1)
	// Under way from here to the end of the delay (before any answer is
	// written, so a client cannot have its answer while still counted).
	up := in.active.Add(1)
	for m := in.maxUp.Load(); up > m && !in.maxUp.CompareAndSwap(m, up); m = in.maxUp.Load() {
	}
	done := sync.OnceFunc(func() { in.active.Add(-1) })
	defer done()
	if !in.enabled.Load() || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	if d := in.delay.Load(); d > 0 {
		select {
		case <-time.After(time.Duration(d)):
		case <-r.Context().Done():
			return
		case <-is.closed:
			return
		}
	}
	done()
	if in.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	in.mu.Lock()
	in.forms = append(in.forms, r.PostForm)
	ok := is.clientAuthenticated(r)
	if !ok {
		in.authFailed++
	}
	tok := r.PostForm.Get("token")
	raw, hasRaw := in.raw[tok]
	claims, active := in.tokens[tok]
	in.mu.Unlock()
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="introspection"`)
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	if hasRaw {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(raw)
		return
	}
	answer := map[string]any{"active": false}
	if active {
		answer = map[string]any{"active": true}
		for k, v := range claims {
			answer[k] = v
		}
	}
	accept, _, _ := mime.ParseMediaType(r.Header.Get("Accept"))
	if accept == "application/token-introspection+jwt" {
		payload, _ := json.Marshal(map[string]any{
			"iss": is.URL, "aud": in.clientID, "iat": time.Now().Unix(), "token_introspection": answer,
		})
		k := is.Key("")
		if p := in.signer.Load(); p != nil {
			k = *p
		}
		jwt, err := Mint(k, payload, map[jose.HeaderKey]any{"typ": "token-introspection+jwt"})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/token-introspection+jwt")
		_, _ = w.Write([]byte(jwt))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(answer)
}

// clientAuthenticated checks the request's client authentication; in.mu is
// held.
func (is *Issuer) clientAuthenticated(r *http.Request) bool {
	in := &is.intro
	if in.clientKey != nil {
		if r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" ||
			r.PostForm.Get("client_id") != in.clientID {
			return false
		}
		jws, err := jose.ParseSignedCompact(r.PostForm.Get("client_assertion"), []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA, jose.PS256})
		if err != nil {
			return false
		}
		payload, err := jws.Verify(in.clientKey)
		if err != nil {
			return false
		}
		var c struct {
			Iss, Sub, Aud string
			Exp           int64
		}
		if json.Unmarshal(payload, &c) != nil {
			return false
		}
		return c.Iss == in.clientID && c.Sub == in.clientID && strings.TrimSuffix(c.Aud, "/") == strings.TrimSuffix(is.URL, "/") && time.Now().Unix() < c.Exp
	}
	id, secret, ok := r.BasicAuth()
	id, err1 := url.QueryUnescape(id) // RFC 6749 §2.3.1
	secret, err2 := url.QueryUnescape(secret)
	return ok && err1 == nil && err2 == nil && id == in.clientID && secret == in.secret
}
