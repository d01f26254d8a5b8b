package identity

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/wardenauthz/warden/internal/fielderr"
)

// Config is the identity section of warden.yaml.
type Config struct {
	Issuers       []IssuerConfig  `yaml:"issuers"`
	DevIssuer     DevIssuerConfig `yaml:"dev_issuer"`
	Workloads     WorkloadsConfig `yaml:"workloads"`
	Anonymous     *bool           `yaml:"anonymous"`
	MaxTokenBytes int             `yaml:"max_token_bytes"`
	// CacheSize bounds the verified-token cache (entries); 0 means the default.
	CacheSize int `yaml:"cache_size"`
	// DPoPNonceKeyFile holds the key (at least 32 bytes) that DPoP nonces
	// (issuers with dpop_nonce) are made with; replicas must share it.
	// Unset: a random key per process, good for one replica.
	DPoPNonceKeyFile string `yaml:"dpop_nonce_key_file"`
	// APIKeys are the accepted API keys (Authorization: ApiKey <key>).
	APIKeys *APIKeysConfig `yaml:"api_keys"`
}

// IssuerConfig describes one trusted OIDC issuer.
type IssuerConfig struct {
	Name       string   `yaml:"name"`
	Issuer     string   `yaml:"issuer"`
	JWKSURI    string   `yaml:"jwks_uri"`
	Audiences  []string `yaml:"audiences"`
	Algorithms []string `yaml:"algorithms"`
	RequireTyp string   `yaml:"require_typ"`
	// ClockSkew is the leeway for exp, nbf and iat; nil (unset) is 30s, and
	// an explicit 0s is none.
	ClockSkew *time.Duration `yaml:"clock_skew"`
	Claims    ClaimsConfig   `yaml:"claims"`
	// InsecureHTTP allows an http:// issuer or jwks_uri on a host that is
	// not loopback (anyone on the path could swap the keys).
	InsecureHTTP bool `yaml:"insecure_http"`
	// JWKSRefresh says how often the keys are fetched again.
	JWKSRefresh JWKSRefreshConfig `yaml:"jwks_refresh"`
	// DPoP says what becomes of DPoP-bound tokens (cnf.jkt, RFC 9449):
	// "allowed" (the default) accepts them with a valid proof and unbound
	// tokens as bearer tokens; "required" refuses every token that is not
	// DPoP-bound; "off" refuses DPoP-bound tokens (never as bearer).
	DPoP string `yaml:"dpop"`
	// DPoPWindow is how old a proof's iat may be (plus clock_skew); its jti
	// is remembered as long. Default 60s.
	DPoPWindow time.Duration `yaml:"dpop_window"`
	// DPoPAlgorithms are the proof algorithms accepted; default algorithms.
	DPoPAlgorithms []string `yaml:"dpop_algorithms"`
	// DPoPNonce requires proofs to carry a server nonce (RFC 9449 §9).
	DPoPNonce bool `yaml:"dpop_nonce"`
	// Introspection, when set, judges this issuer's opaque tokens (or all
	// its tokens) at its introspection endpoint (RFC 7662).
	Introspection *IntrospectionConfig `yaml:"introspection"`
}

// DPoP modes.
const (
	DPoPAllowed  = "allowed"
	DPoPRequired = "required"
	DPoPOff      = "off"
)

// Skew is the issuer's clock skew (SetDefaults has filled it in).
func (c IssuerConfig) Skew() time.Duration {
	if c.ClockSkew == nil {
		return defaultClockSkew
	}
	return *c.ClockSkew
}

// JWKSRefreshConfig bounds key refetches. The keys are fetched again in the
// background when the JWKS response's Cache-Control max-age (or Expires)
// says, kept between MinInterval and MaxInterval (MinInterval when the
// response says nothing or no-cache); a token with a key id not in the set
// fetches at once, unless a fetch was tried within UnknownKidInterval.
type JWKSRefreshConfig struct {
	MinInterval        time.Duration `yaml:"min_interval"`
	MaxInterval        time.Duration `yaml:"max_interval"`
	UnknownKidInterval time.Duration `yaml:"unknown_kid_interval"`
}

// ClaimsConfig names the claims that carry groups, scopes and the client id.
type ClaimsConfig struct {
	Groups   string `yaml:"groups"`
	Scopes   string `yaml:"scopes"`
	ClientID string `yaml:"client_id"`
}

// DevIssuerConfig enables the built-in development issuer (quick start only).
type DevIssuerConfig struct {
	Enabled bool   `yaml:"enabled"`
	KeyFile string `yaml:"key_file"`
}

// WorkloadsConfig lists the SPIFFE trust domains whose workloads are accepted.
type WorkloadsConfig struct {
	TrustDomains []string `yaml:"trust_domains"`
	// TrustXFCC takes the workload from x-forwarded-client-cert when Envoy
	// reports no peer certificate. Only safe when every proxy in front
	// sanitizes the header (forward_client_cert_details: SANITIZE_SET, as
	// Istio does); off by default.
	TrustXFCC bool `yaml:"trust_xfcc"`
}

// Algorithms Warden can verify. HS* and none are never accepted.
var supportedAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

const (
	defaultMaxTokenBytes = 8192
	defaultClockSkew     = 30 * time.Second
	defaultCacheSize     = 65536
	defaultDPoPWindow    = time.Minute

	defaultMinRefresh        = time.Minute
	defaultMaxRefresh        = 15 * time.Minute
	defaultUnknownKidRefetch = 3 * time.Second
)

// SetDefaults fills in every unset field.
func (c *Config) SetDefaults() {
	if c.Anonymous == nil {
		t := true
		c.Anonymous = &t
	}
	if c.MaxTokenBytes == 0 {
		c.MaxTokenBytes = defaultMaxTokenBytes
	}
	if c.CacheSize == 0 {
		c.CacheSize = defaultCacheSize
	}
	if len(c.Workloads.TrustDomains) == 0 {
		c.Workloads.TrustDomains = []string{"cluster.local"}
	}
	if c.APIKeys != nil {
		c.APIKeys.setDefaults()
	}
	for i := range c.Issuers {
		is := &c.Issuers[i]
		if len(is.Algorithms) == 0 {
			is.Algorithms = []string{"RS256", "ES256", "EdDSA"}
		}
		if is.DPoP == "" {
			is.DPoP = DPoPAllowed
		}
		if is.DPoPWindow == 0 {
			is.DPoPWindow = defaultDPoPWindow
		}
		if len(is.DPoPAlgorithms) == 0 {
			is.DPoPAlgorithms = is.Algorithms
		}
		if is.ClockSkew == nil { // unset; an explicit 0s stays 0
			d := defaultClockSkew
			is.ClockSkew = &d
		}
		if is.Claims.Groups == "" {
			is.Claims.Groups = "groups"
		}
		if is.Claims.Scopes == "" {
			is.Claims.Scopes = "scope"
		}
		if is.Claims.ClientID == "" {
			is.Claims.ClientID = "client_id"
		}
		if is.Introspection != nil {
			is.Introspection.setDefaults()
		}
		r := &is.JWKSRefresh
		if r.MinInterval == 0 {
			r.MinInterval = defaultMinRefresh
		}
		if r.MaxInterval == 0 {
			r.MaxInterval = max(defaultMaxRefresh, r.MinInterval)
		}
		if r.UnknownKidInterval == 0 {
			r.UnknownKidInterval = defaultUnknownKidRefetch
		}
	}
}

// Validate reports every problem at once, as a fielderr.List whose paths
// are relative to this section.
func (c *Config) Validate() error {
	var errs fielderr.List
	bad := func(path, format string, args ...any) {
		errs = append(errs, fielderr.Errorf(path, format, args...))
	}
	if c.MaxTokenBytes < 256 || c.MaxTokenBytes > 1<<20 {
		bad("max_token_bytes", "must be between 256 and 1048576, got %d", c.MaxTokenBytes)
	}
	if c.CacheSize < 0 {
		bad("cache_size", "must not be negative")
	}
	names := map[string]bool{DevIssuerName: c.DevIssuer.Enabled}
	opaque := "" // the issuer that introspects opaque tokens
	issuers := map[string]bool{}
	for i, is := range c.Issuers {
		p := fmt.Sprintf("issuers[%d]", i)
		switch {
		case is.Name == "":
			bad(p+".name", "is required")
		case strings.ContainsAny(is.Name, "|\" "):
			bad(p+".name", "must not contain '|', '\"' or spaces")
		case names[is.Name]:
			bad(p+".name", "%q is used twice", is.Name)
		}
		names[is.Name] = true
		if u, err := url.Parse(is.Issuer); is.Issuer == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad(p+".issuer", "must be an http(s) URL, got %q", is.Issuer)
		} else if issuers[is.Issuer] {
			bad(p+".issuer", "%q is configured twice", is.Issuer)
		} else if !is.InsecureHTTP && insecureURL(is.Issuer) {
			bad(p+".issuer", "%q is plain http on a host that is not loopback: anyone on the path could swap the keys; use https (or set insecure_http: true)", is.Issuer)
		}
		issuers[is.Issuer] = true
		if is.JWKSURI != "" {
			if u, err := url.Parse(is.JWKSURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				bad(p+".jwks_uri", "must be an http(s) URL, got %q", is.JWKSURI)
			} else if !is.InsecureHTTP && insecureURL(is.JWKSURI) {
				bad(p+".jwks_uri", "%q is plain http on a host that is not loopback: anyone on the path could swap the keys; use https (or set insecure_http: true)", is.JWKSURI)
			}
		}
		r := is.JWKSRefresh
		if r.UnknownKidInterval < time.Second || r.UnknownKidInterval > time.Minute {
			bad(p+".jwks_refresh.unknown_kid_interval", "must be between 1s and 1m, got %s", r.UnknownKidInterval)
		}
		if r.MinInterval < time.Second || r.MinInterval > 24*time.Hour {
			bad(p+".jwks_refresh.min_interval", "must be between 1s and 24h, got %s", r.MinInterval)
		}
		if r.MaxInterval < r.MinInterval || r.MaxInterval > 24*time.Hour {
			bad(p+".jwks_refresh.max_interval", "must be between min_interval (%s) and 24h, got %s", r.MinInterval, r.MaxInterval)
		}
		if len(is.Audiences) == 0 {
			bad(p+".audiences", "must list at least one accepted audience")
		}
		for j, a := range is.Algorithms {
			if !slices.Contains(supportedAlgs, a) {
				bad(fmt.Sprintf("%s.algorithms[%d]", p, j), "%q is not allowed (one of %s)", a, strings.Join(supportedAlgs, ", "))
			}
		}
		switch is.DPoP {
		case DPoPAllowed, DPoPRequired, DPoPOff:
		default:
			bad(p+".dpop", "must be one of allowed, required, off, got %q", is.DPoP)
		}
		if is.DPoPWindow < time.Second || is.DPoPWindow > 10*time.Minute {
			bad(p+".dpop_window", "must be between 1s and 10m, got %s", is.DPoPWindow)
		}
		// Unset, dpop_algorithms is algorithms (SetDefaults): a bad one is
		// reported once, under the key that was written.
		dpopDefaulted := slices.Equal(is.DPoPAlgorithms, is.Algorithms)
		for j, a := range is.DPoPAlgorithms {
			if !dpopDefaulted && !slices.Contains(supportedAlgs, a) {
				bad(fmt.Sprintf("%s.dpop_algorithms[%d]", p, j), "%q is not allowed (one of %s)", a, strings.Join(supportedAlgs, ", "))
			}
		}
		if d := is.Skew(); d < 0 || d > 5*time.Minute {
			bad(p+".clock_skew", "must be between 0s and 5m, got %s", d)
		}
		if ic := is.Introspection; ic != nil {
			ic.validate(p+".introspection", is, bad)
			if ic.Tokens == IntrospectOpaque {
				if opaque != "" {
					bad(p+".introspection.tokens", "opaque tokens carry no issuer, so only one issuer may introspect them; %s does already (set tokens: all here)", opaque)
				}
				opaque = p
			}
		}
	}
	if c.APIKeys != nil {
		c.APIKeys.validate("api_keys", bad)
	}
	for i, td := range c.Workloads.TrustDomains {
		if td == "" || strings.ContainsAny(td, "/: ") {
			bad(fmt.Sprintf("workloads.trust_domains[%d]", i), "%q is not a trust domain name", td)
		}
	}
	return errs.Err()
}

// Warnings are problems Validate lets pass because they are not certain,
// with key paths relative to this section.
func (c *Config) Warnings() fielderr.List {
	var out fielderr.List
	for i, is := range c.Issuers {
		u, err := url.Parse(is.Issuer)
		if err != nil || u.Host == "" {
			continue
		}
		if strings.HasSuffix(u.Path, "/") {
			out = append(out, fielderr.Errorf(fmt.Sprintf("issuers[%d].issuer", i), "%q ends with '/': it must equal the provider's discovery issuer and the tokens' iss character for character, and most providers (Auth0 is an exception) have no trailing slash; if discovery says %q, Warden will never be ready",
				is.Issuer, strings.TrimRight(is.Issuer, "/")))
		}
	}
	return out
}

// insecureURL reports whether raw is plain http to a host that is not
// loopback.
func insecureURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" {
		return false
	}
	return !loopbackHost(u.Hostname())
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// ResolvePaths makes the section's file paths (API key file, introspection
// client secret and key files) relative to the config's directory.
func (c *Config) ResolvePaths(resolve func(string) string) {
	if c.APIKeys != nil && c.APIKeys.File != "" {
		c.APIKeys.File = resolve(c.APIKeys.File)
	}
	for i := range c.Issuers {
		if ic := c.Issuers[i].Introspection; ic != nil {
			ic.ClientSecretFile = resolve(ic.ClientSecretFile)
			if k := ic.PrivateKeyJWT; k != nil {
				k.KeyFile = resolve(k.KeyFile)
			}
		}
	}
}
