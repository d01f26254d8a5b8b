package httpauthz

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/wardenauthz/warden/authz"
)

// mode is the protocol of one request, which decides how it is answered.
type mode int

const (
	modeEnvoy   mode = iota // Envoy's HTTP service: the request line is the client's
	modeForward             // Traefik, Caddy: X-Forwarded-Method / -Uri
	modeNginx               // nginx auth_request: X-Original-Method / -URI
)

// skipped are request headers that describe the call to Warden rather than
// the client's request (or that the builder turns into pseudo-headers).
var skipped = map[string]bool{
	"host": true, "content-length": true, "connection": true, "keep-alive": true,
	"proxy-connection": true, "te": true, "trailer": true, "transfer-encoding": true,
	"http2-settings":     true,
	"x-forwarded-method": true, "x-forwarded-uri": true,
	"x-original-method": true, "x-original-uri": true,
	// Envoy's own headers about the call to the authorization service.
	"x-envoy-expected-rq-timeout-ms": true,
}

// built is a CheckRequest with how to answer it, or why it is refused.
type built struct {
	req     *authv3.CheckRequest
	mode    mode
	refusal *authz.Refusal
}

func (h *Handler) refuse(b *built, format string, args ...any) {
	if b.refusal == nil {
		b.refusal = &authz.Refusal{Detail: fmt.Sprintf(format, args...)}
	}
}

// build reads r as the CheckRequest Envoy would send for the client's
// request. It never fails: a request it will not judge gets a refusal.
func (h *Handler) build(r *http.Request) *built {
	b := &built{}
	peer, _ := netip.ParseAddrPort(r.RemoteAddr)
	peerIP := peer.Addr().Unmap()
	trusted := h.trusted(peerIP)

	fwdMethod, fm := single(r, "X-Forwarded-Method")
	fwdURI, fu := single(r, "X-Forwarded-Uri")
	origMethod, om := single(r, "X-Original-Method")
	origURI, ou := single(r, "X-Original-Uri")
	forwarded := fm != absent || fu != absent || om != absent || ou != absent

	method, path := r.Method, r.RequestURI
	host, scheme := r.Host, "http"
	if r.TLS != nil {
		scheme = "https"
	}
	srcIP, srcPort := peerIP, uint32(peer.Port())

	switch {
	case forwarded && !trusted:
		h.refuse(b, "forwarded method or URI from %s, which is not in server.http_authz.trusted_proxies", peerIP)
		b.mode = modeForward
		if om != absent || ou != absent {
			b.mode = modeNginx
		}
	case forwarded:
		b.mode = modeForward
		if om != absent || ou != absent {
			b.mode = modeNginx
		}
		for _, s := range []state{fm, fu, om, ou} {
			if s == repeated {
				h.refuse(b, "a forwarded method or URI header is repeated")
			}
		}
		method = agree(b, h, "method", fwdMethod, fm, origMethod, om)
		path = agree(b, h, "URI", fwdURI, fu, origURI, ou)
		if method == "" || path == "" {
			h.refuse(b, "a forwarded request needs both its method and its URI")
		}
		if xfh, s := single(r, "X-Forwarded-Host"); s == repeated || s == present && !validHost(xfh) {
			h.refuse(b, "X-Forwarded-Host is repeated or malformed")
		} else if s == present {
			host = xfh
		}
	default:
		// Envoy's HTTP service: the request line is the client's.
		if p := h.o.PathPrefix; p != "" {
			rest, ok := strings.CutPrefix(path, p)
			if !ok || !strings.HasPrefix(rest, "/") {
				h.refuse(b, "the path does not start with server.http_authz.path_prefix %s", p)
			}
			path = rest
		}
	}
	if !validMethod(method) {
		h.refuse(b, "malformed method")
	}
	if !validURI(path) {
		h.refuse(b, "the URI must be an origin-form path (/...)")
	}
	if trusted {
		if xfp, s := single(r, "X-Forwarded-Proto"); s == repeated {
			h.refuse(b, "X-Forwarded-Proto is repeated")
		} else if s == present {
			switch p := strings.ToLower(strings.TrimSpace(xfp)); p {
			case "http", "https":
				scheme = p
			default:
				h.refuse(b, "X-Forwarded-Proto must be http or https")
			}
		}
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			all := strings.Join(xff, ",")
			last := strings.TrimSpace(all[strings.LastIndexByte(all, ',')+1:])
			ip, err := parseIP(last)
			if err != nil {
				h.refuse(b, "the last X-Forwarded-For address is not an IP address")
			} else {
				srcIP, srcPort = ip, 0
			}
		}
	}

	var hs []*corev3.HeaderValue
	add := func(k, v string) { hs = append(hs, &corev3.HeaderValue{Key: k, RawValue: []byte(v)}) }
	add(":authority", host)
	add(":method", method)
	add(":path", path)
	add(":scheme", scheme)
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		lk := strings.ToLower(k)
		if skipped[lk] || strings.HasPrefix(lk, ":") || lk == "x-forwarded-client-cert" && !trusted {
			continue
		}
		for _, v := range r.Header[k] {
			add(lk, v)
		}
	}

	hr := &authv3.AttributeContext_HttpRequest{
		Method: method, Path: path, Host: host, Scheme: scheme,
		HeaderMap: &corev3.HeaderMap{Headers: hs},
	}
	if body, err := h.readBody(r); err != nil {
		h.refuse(b, "the request body could not be read")
	} else if utf8.Valid(body) {
		hr.Body = string(body)
	} else {
		hr.RawBody = body
	}
	src := &corev3.Address{}
	if srcIP.IsValid() {
		src.Address = &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: srcIP.String(), PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: srcPort},
		}}
	}
	b.req = &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:  &authv3.AttributeContext_Peer{Address: src},
		Request: &authv3.AttributeContext_Request{Http: hr},
	}}
	return b
}

// readBody reads at most one byte past the body limit (the pipeline's
// screen then denies 413).
func (h *Handler) readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	limit := h.o.MaxBodyBytes
	if limit <= 0 {
		limit = defaultMaxBody
	}
	return io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
}

const defaultMaxBody = 4 << 20

func (h *Handler) trusted(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	for _, p := range h.o.Trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

type state int

const (
	absent state = iota
	present
	repeated
)

// single is a header's only value.
func single(r *http.Request, name string) (string, state) {
	v := r.Header.Values(name)
	switch len(v) {
	case 0:
		return "", absent
	case 1:
		return v[0], present
	}
	return "", repeated
}

// agree is the value the present spellings share; spellings that disagree
// are refused.
func agree(b *built, h *Handler, what, a string, as state, c string, cs state) string {
	switch {
	case as == present && cs == present && a != c:
		h.refuse(b, "X-Forwarded and X-Original %s headers disagree", what)
		return ""
	case as == present:
		return a
	case cs == present:
		return c
	}
	return ""
}

// validMethod: an RFC 9110 token.
func validMethod(m string) bool {
	if m == "" || len(m) > 64 {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validURI: origin-form, no whitespace, control bytes or fragment.
func validURI(u string) bool {
	if !strings.HasPrefix(u, "/") {
		return false
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; c <= ' ' || c == 0x7f || c == '#' {
			return false
		}
	}
	return true
}

func validHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; c <= ' ' || c == 0x7f || strings.IndexByte("/?#@\\,", c) >= 0 {
			return false
		}
	}
	return true
}

// parseIP reads an X-Forwarded-For element: an address, with a port or in
// brackets as some proxies write it.
func parseIP(s string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(s); err == nil && ip.Zone() == "" {
		return ip.Unmap(), nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), nil
	}
	if t, ok := strings.CutPrefix(s, "["); ok {
		if t, ok := strings.CutSuffix(t, "]"); ok {
			if ip, err := netip.ParseAddr(t); err == nil && ip.Zone() == "" {
				return ip.Unmap(), nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("not an IP address")
}
