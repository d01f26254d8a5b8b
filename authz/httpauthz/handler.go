package httpauthz

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/wardenauthz/warden/authz"
)

// Evaluator runs the pipeline (authz.Authorizer).
type Evaluator interface {
	Evaluate(ctx context.Context, req *authv3.CheckRequest) authz.Outcome
}

// Options configure a Handler.
type Options struct {
	Authorizer Evaluator
	// Trusted are the proxies whose forwarded headers are believed.
	Trusted []netip.Prefix
	// PathPrefix is stripped from an Envoy HTTP-mode request's path.
	PathPrefix string
	// HeadersPrefix is response.headers_prefix: nginx reads the real status
	// and the problem body from <prefix>status and <prefix>problem.
	HeadersPrefix string
	// MaxBodyBytes is server.limits.max_body_bytes (0: 4 MiB is read).
	MaxBodyBytes int
}

// Handler answers authorization requests over HTTP. It is safe for
// concurrent use.
type Handler struct{ o Options }

// New builds a Handler.
func New(o Options) *Handler {
	if o.HeadersPrefix == "" {
		o.HeadersPrefix = "x-warden-"
	}
	o.HeadersPrefix = strings.ToLower(o.HeadersPrefix)
	return &Handler{o: o}
}

// EnvoyHeadersToRemove is the response header in which Envoy's HTTP service
// reads the request headers to remove before the request goes upstream.
const EnvoyHeadersToRemove = "x-envoy-auth-headers-to-remove"

// ServeHTTP judges the request and answers it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b := h.build(r)
	ctx := authz.WithTransport(r.Context(), authz.TransportHTTP)
	if b.refusal != nil {
		ctx = authz.WithRefusal(ctx, *b.refusal)
	}
	out := h.o.Authorizer.Evaluate(ctx, b.req)
	h.write(w, out.Response, b.mode)
}

// write answers the proxy: 200 with the identity headers on allow (and,
// for Envoy, the headers to remove), else the denial's status, headers and
// problem body. nginx's auth_request understands only 2xx, 401 and 403, so
// nginx gets 401 or 403 with the real status in <prefix>status and the
// body in <prefix>problem, for the shipped config to answer with.
func (h *Handler) write(w http.ResponseWriter, resp *authv3.CheckResponse, m mode) {
	hdr := w.Header()
	if ok := resp.GetOkResponse(); ok != nil && resp.GetStatus().GetCode() == 0 {
		for _, o := range ok.GetHeaders() {
			hdr.Set(o.GetHeader().GetKey(), value(o.GetHeader()))
		}
		for _, o := range ok.GetResponseHeadersToAdd() {
			hdr.Set(o.GetHeader().GetKey(), value(o.GetHeader()))
		}
		if rm := ok.GetHeadersToRemove(); len(rm) > 0 && m == modeEnvoy {
			hdr.Set(EnvoyHeadersToRemove, strings.Join(rm, ","))
		}
		hdr.Set("cache-control", "no-store")
		w.WriteHeader(http.StatusOK)
		return
	}
	d := resp.GetDeniedResponse()
	status := int(d.GetStatus().GetCode())
	if status < 400 || status > 599 {
		status = http.StatusForbidden
	}
	for _, o := range d.GetHeaders() {
		hdr.Set(o.GetHeader().GetKey(), value(o.GetHeader()))
	}
	if hdr.Get("content-type") == "" {
		hdr.Set("content-type", "application/problem+json")
	}
	body := d.GetBody()
	if m == modeNginx {
		hdr.Set(h.o.HeadersPrefix+"status", strconv.Itoa(status))
		hdr.Set(h.o.HeadersPrefix+"problem", body)
		if status != http.StatusUnauthorized {
			status = http.StatusForbidden
		}
	}
	hdr.Set("content-length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func value(v *corev3.HeaderValue) string {
	if v.GetValue() != "" {
		return v.GetValue()
	}
	return string(v.GetRawValue())
}
