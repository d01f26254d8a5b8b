package identity

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// MaxProofBytes bounds a DPoP header: a proof with an RSA-4096 key and
// signature is about 2 KiB.
const MaxProofBytes = 4096

// maxJTIBytes bounds a proof's jti (it is hashed into the replay key).
const maxJTIBytes = 256

// ReplayCache remembers DPoP proofs (RFC 9449 §11.1): Seen records key for
// ttl and reports whether it was already recorded. It
// lives in the store, so that every replica refuses a proof any of them
// has accepted; an error means the proof cannot be judged (fail closed).
type ReplayCache interface {
	Seen(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Request is the HTTP request a DPoP proof must name: method and URL as
// Envoy gives them.
type Request struct {
	Method string
	Scheme string // :scheme
	Host   string // :authority
	Path   string // :path, query included
}

// proofClaims are a proof's payload members.
type proofClaims struct {
	htm, htu, jti, ath, nonce string
	iat                       time.Time
}

// privateJWKMembers are JWK members that only a private (or symmetric) key
// has (RFC 7518 §6.2.2, §6.3.2, §6.4.1; RFC 8037 §2).
var privateJWKMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// parseProof checks a DPoP proof's form and signature (RFC 9449 §4.3 steps
// 1–7, less the claims' values): one compact JWS of at most MaxProofBytes,
// typ dpop+jwt, alg one of algs, an embedded public jwk, a valid signature
// by that jwk, and the claims jti, htm, htu and iat of the right types. It
// returns the claims and the jwk's RFC 7638 thumbprint.
func parseProof(proof string, algs []string) (jkt string, c proofClaims, err error) {
	bad := func(format string, args ...any) (string, proofClaims, error) {
		return "", proofClaims{}, fmt.Errorf("%w: "+format, append([]any{ErrDPoPProof}, args...)...)
	}
	switch {
	case proof == "":
		return bad("no DPoP header")
	case len(proof) > MaxProofBytes:
		return bad("%d bytes over the %d byte limit", len(proof), MaxProofBytes)
	case strings.Contains(proof, ","):
		return bad("more than one DPoP header")
	}
	dots := 0
	for i := 0; i < len(proof); i++ {
		switch c := proof[i]; {
		case c == '.':
			dots++
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return bad("not a compact JWS")
		}
	}
	h64, rest, _ := strings.Cut(proof, ".")
	p64, s64, _ := strings.Cut(rest, ".")
	if dots != 2 || h64 == "" || p64 == "" || s64 == "" {
		return bad("not a compact JWS")
	}
	hb, err := b64.DecodeString(h64)
	if err != nil {
		return bad("header is not base64url")
	}
	var hdr map[string]any
	if err := decodeObject(hb, &hdr); err != nil {
		return bad("header: %v", err)
	}
	for _, k := range []string{"crit", "b64", "enc", "zip"} {
		if _, ok := hdr[k]; ok {
			return bad("header parameter %q", k)
		}
	}
	typ, _ := hdr["typ"].(string)
	if !typMatches(typ, "dpop+jwt") {
		return bad("typ is not dpop+jwt")
	}
	alg, _ := hdr["alg"].(string)
	allowed := false
	for _, a := range algs {
		allowed = allowed || a == alg
	}
	if !allowed { // none, HS*, and whatever the issuer does not list
		return bad("alg %q not allowed", truncate(alg, 16))
	}
	jm, ok := hdr["jwk"].(map[string]any)
	if !ok {
		return bad("no jwk header")
	}
	for _, k := range privateJWKMembers {
		if _, ok := jm[k]; ok {
			return bad("jwk holds a private key")
		}
	}
	jraw, err := json.Marshal(jm)
	if err != nil {
		return bad("jwk: %v", err)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(jraw); err != nil || !jwk.Valid() || !jwk.IsPublic() {
		return bad("jwk is not a valid public key")
	}
	if !strongEnough(jwk) {
		return bad("jwk is an RSA key under 2048 bits")
	}
	sig, err := jose.ParseSignedCompact(proof, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
	if err != nil || len(sig.Signatures) != 1 {
		return bad("not a JWS")
	}
	payload, err := sig.Verify(jwk.Key)
	if err != nil {
		return bad("signature does not verify with its jwk")
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return bad("jwk thumbprint: %v", err)
	}
	var claims map[string]any
	if err := decodeObject(payload, &claims); err != nil {
		return bad("claims: %v", err)
	}
	str := func(name string, required bool) (string, bool) {
		v, present := claims[name]
		if !present {
			return "", !required
		}
		s, ok := v.(string)
		return s, ok && s != ""
	}
	var okHTM, okHTU, okJTI, okATH, okNonce bool
	c.htm, okHTM = str("htm", true)
	c.htu, okHTU = str("htu", true)
	c.jti, okJTI = str("jti", true)
	c.ath, okATH = str("ath", false)
	c.nonce, okNonce = str("nonce", false)
	switch {
	case !okHTM:
		return bad("no htm")
	case !okHTU:
		return bad("no htu")
	case !okJTI || len(c.jti) > maxJTIBytes:
		return bad("no jti (or one over %d bytes)", maxJTIBytes)
	case !okATH:
		return bad("ath is not a string")
	case !okNonce:
		return bad("nonce is not a string")
	}
	n, ok := claims["iat"].(json.Number)
	if !ok {
		return bad("no iat")
	}
	if c.iat, ok = unixSeconds(n); !ok {
		return bad("iat out of range")
	}
	return base64.RawURLEncoding.EncodeToString(tp), c, nil
}

// checkProof verifies the DPoP proof of a request presenting raw, a token
// bound to jkt (RFC 9449 §4.3 and §7.1), and records its jti in the replay
// cache. Every refusal wraps a *DPoPChallenge.
func (a *Authenticator) checkProof(ctx context.Context, is *issuer, in Input, raw, jkt string) error {
	challenge := func(err error) error {
		return &DPoPChallenge{Err: err, Algs: is.cfg.DPoPAlgorithms}
	}
	got, c, err := parseProof(in.DPoP, is.cfg.DPoPAlgorithms)
	if err != nil {
		return challenge(err)
	}
	bad := func(format string, args ...any) error {
		return challenge(fmt.Errorf("%w: "+format, append([]any{ErrDPoPProof}, args...)...))
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(jkt)) != 1 {
		return bad("jwk is not the key the token is bound to")
	}
	if c.htm != in.Request.Method {
		return bad("htm does not match the request method")
	}
	want, ok := requestURI(in.Request)
	if !ok {
		return bad("the request has no URI a proof can name")
	}
	if u, ok := normalizeHTU(c.htu); !ok || u != want {
		return bad("htu does not match the request URI")
	}
	sum := hashToken(raw)
	if subtle.ConstantTimeCompare([]byte(c.ath), []byte(base64.RawURLEncoding.EncodeToString(sum[:]))) != 1 {
		return bad("ath does not match the access token")
	}
	now, skew, window := a.now(), is.cfg.Skew(), is.cfg.DPoPWindow
	if c.iat.After(now.Add(skew)) {
		return bad("iat is in the future")
	}
	until := c.iat.Add(window + skew)
	if !now.Before(until) {
		return bad("iat is older than dpop_window")
	}
	if is.cfg.DPoPNonce && !a.nonces.valid(is.cfg.Name, c.nonce, now, window) {
		return &DPoPChallenge{Err: fmt.Errorf("%w: the proof must carry the current DPoP-Nonce", ErrDPoPNonce),
			Algs: is.cfg.DPoPAlgorithms, Nonce: a.nonces.current(is.cfg.Name, now, window)}
	}
	if a.replay == nil {
		return fmt.Errorf("%w: none configured", ErrReplayUnavailable)
	}
	// The key names the proof by its key and jti, hashed to bound it.
	k := sha256.Sum256([]byte(is.cfg.Name + "\x00" + jkt + "\x00" + c.jti))
	// It is kept until the proof is too old anyway (iat is in seconds).
	seen, err := a.replay.Seen(ctx, base64.RawURLEncoding.EncodeToString(k[:]), until.Sub(now)+time.Second)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrReplayUnavailable, err)
	}
	if seen {
		return bad("jti replayed")
	}
	return nil
}

// requestURI is the request's htu (RFC 9449 §4.3 point 9): scheme and
// :authority as Envoy gives them, the path without query and fragment,
// normalised as normalizeHTU does.
func requestURI(r Request) (string, bool) {
	if r.Scheme == "" || r.Host == "" || !strings.HasPrefix(r.Path, "/") {
		return "", false
	}
	p, _, _ := strings.Cut(r.Path, "?")
	p, _, _ = strings.Cut(p, "#")
	return normalizeHTU(r.Scheme + "://" + r.Host + p)
}

// normalizeHTU normalises an http(s) URI for comparison (RFC 3986 §6.2.2
// and §6.2.3, as RFC 9449 §4.3 asks): scheme and host lower-cased, the
// scheme's default port dropped, percent-encodings upper-cased and those of
// unreserved characters decoded, dot segments removed, an empty path "/".
// ok is false for anything else: another scheme, user info, a query or a
// fragment (a proof's htu has neither), a malformed host or escape.
func normalizeHTU(s string) (string, bool) {
	if len(s) > 8192 || strings.ContainsAny(s, "?#\\ \t\r\n") {
		return "", false
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "", false
	}
	scheme = strings.ToLower(scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	if authority == "" || strings.Contains(authority, "@") || strings.Contains(authority, "%") {
		return "", false
	}
	host, port := authority, ""
	if h, p, err := net.SplitHostPort(authority); err == nil {
		host, port = h, p
		if port == "" {
			return "", false
		}
		for _, c := range port {
			if c < '0' || c > '9' {
				return "", false
			}
		}
		n, err := strconv.Atoi(port)
		if err != nil || n > 65535 {
			return "", false
		}
		port = strconv.Itoa(n)
	} else if strings.Contains(authority, ":") && !strings.HasPrefix(authority, "[") {
		return "", false
	}
	host = strings.ToLower(host)
	if strings.HasPrefix(host, "[") || strings.Contains(host, ":") {
		h, ok := strings.CutPrefix(host, "[")
		h, ok2 := strings.CutSuffix(h, "]")
		if !ok || !ok2 || net.ParseIP(h) == nil {
			return "", false
		}
		host = h
	} else if host == "" || strings.ContainsFunc(host, func(r rune) bool {
		return !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || strings.ContainsRune("-._~!$&'()*+;=", r))
	}) {
		return "", false
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	p, ok := normalizePercent(path)
	if !ok {
		return "", false
	}
	p = removeDotSegments(p)
	if p == "" {
		p = "/"
	}
	out := scheme + "://" + host
	if port != "" {
		out += ":" + port
	}
	return out + p, true
}

// normalizePercent upper-cases percent-encodings and decodes those of
// unreserved characters (RFC 3986 §6.2.2.2).
func normalizePercent(p string) (string, bool) {
	if !strings.Contains(p, "%") {
		return p, true
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			b.WriteByte(p[i])
			continue
		}
		if i+2 >= len(p) || !ishex(p[i+1]) || !ishex(p[i+2]) {
			return "", false
		}
		v, _ := url.PathUnescape(p[i : i+3])
		c := v[0]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteString(strings.ToUpper(p[i : i+3]))
		}
		i += 2
	}
	return b.String(), true
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// removeDotSegments is RFC 3986 §5.2.4.
func removeDotSegments(in string) string {
	var out []string
	segs := strings.Split(in, "/")
	for i, s := range segs {
		switch s {
		case ".":
			if i == len(segs)-1 {
				out = append(out, "")
			}
		case "..":
			if len(out) > 1 {
				out = out[:len(out)-1]
			}
			if i == len(segs)-1 {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return strings.Join(out, "/")
}

// nonces makes and checks stateless DPoP nonces (RFC 9449 §8): a nonce
// names a time slot of dpop_window and carries its HMAC under key, so any
// replica with the same key (identity.dpop_nonce_key_file) accepts it.
// The current and the previous slot's nonces are valid.
type nonces struct{ key []byte }

func (n *nonces) make(issuer string, slot int64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(slot))
	m := hmac.New(sha256.New, n.key)
	m.Write([]byte(issuer))
	m.Write([]byte{0})
	m.Write(b[:])
	return base64.RawURLEncoding.EncodeToString(append(b[:], m.Sum(nil)[:16]...))
}

func (n *nonces) current(issuer string, now time.Time, window time.Duration) string {
	return n.make(issuer, now.UnixNano()/int64(window))
}

func (n *nonces) valid(issuer, nonce string, now time.Time, window time.Duration) bool {
	if nonce == "" || len(nonce) > 64 {
		return false
	}
	slot := now.UnixNano() / int64(window)
	for _, s := range []int64{slot, slot - 1} {
		if hmac.Equal([]byte(nonce), []byte(n.make(issuer, s))) {
			return true
		}
	}
	return false
}
