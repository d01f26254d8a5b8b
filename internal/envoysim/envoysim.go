// Package envoysim is a test-only stand-in for Envoy's ext_authz HTTP
// filter in front of an upstream (no Envoy binary can run here). It builds
// the CheckRequest Envoy would (via authz/checkreq), calls the authorizer
// over gRPC with the filter's timeout, and applies the CheckResponse the way
// Envoy does (ENVOY.md): a gRPC error is a failure answered with
// status_on_error (or allowed with failure_mode_allow); a denial sends
// denied_response's status (403 when unset), headers and body; an allow
// applies OkHttpResponse headers honouring only the deprecated `append`
// (unset/false overwrites, true appends only to a header already present),
// ignores removals of pseudo-headers and host, and sends
// response_headers_to_add to the client. Before all that, the connection
// manager's headers_with_underscores_action applies.
package envoysim

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/wardenauthz/warden/authz/checkreq"
	"github.com/wardenauthz/warden/envoy/envoycheck"
)

// FromFile configures a Front as the first HTTP listener of an Envoy
// bootstrap file: its ext_authz filter's timeout, failure_mode_allow and
// status_on_error, and its first virtual host's routes (exact path or
// prefix, ext_authz disabled or context_extensions per route).
func FromFile(file string, authz authv3.AuthorizationClient, upstream *url.URL) (*Front, error) {
	bs, err := envoycheck.LoadBootstrap(file)
	if err != nil {
		return nil, err
	}
	f := &Front{Authz: authz, Upstream: upstream}
	var hcm hcmv3.HttpConnectionManager
	found := false
	for _, l := range bs.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, flt := range fc.GetFilters() {
				if !found && flt.GetTypedConfig().UnmarshalTo(&hcm) == nil {
					found = true
				}
			}
		}
	}
	if !found {
		return nil, fmt.Errorf("%s: no HTTP connection manager", file)
	}
	f.NormalizePath = hcm.GetNormalizePath().GetValue()
	f.MergeSlashes = hcm.GetMergeSlashes()
	f.RejectEscapedSlashes = hcm.GetPathWithEscapedSlashesAction() == hcmv3.HttpConnectionManager_REJECT_REQUEST
	f.HeadersWithUnderscores = hcm.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction()
	for _, hf := range hcm.GetHttpFilters() {
		var az extauthzv3.ExtAuthz
		if hf.GetTypedConfig().UnmarshalTo(&az) != nil {
			continue
		}
		f.Timeout = az.GetGrpcService().GetTimeout().AsDuration()
		f.FailureModeAllow = az.GetFailureModeAllow()
		f.StatusOnError = int(az.GetStatusOnError().GetCode())
	}
	for _, r := range hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes() {
		rt := Route{Path: r.GetMatch().GetPath(), Prefix: r.GetMatch().GetPrefix()}
		if a, ok := r.GetTypedPerFilterConfig()["envoy.filters.http.ext_authz"]; ok {
			var pr extauthzv3.ExtAuthzPerRoute
			if err := a.UnmarshalTo(&pr); err != nil {
				return nil, err
			}
			rt.Disabled = pr.GetDisabled()
			rt.ContextExtensions = pr.GetCheckSettings().GetContextExtensions()
		}
		f.Routes = append(f.Routes, rt)
	}
	return f, nil
}

// Route is a route of the virtual host, matched in order by exact path or
// by prefix.
type Route struct {
	Path   string
	Prefix string
	// Disabled turns ext_authz off (ExtAuthzPerRoute.disabled).
	Disabled bool
	// ContextExtensions are the route's check_settings.context_extensions.
	ContextExtensions map[string]string
}

// Front is the proxy. Zero values are Envoy's defaults.
type Front struct {
	Authz    authv3.AuthorizationClient
	Upstream *url.URL
	Routes   []Route
	// Timeout is the filter's grpc_service timeout (Envoy's default 200ms).
	Timeout time.Duration
	// StatusOnError answers authorizer failures (default 403).
	StatusOnError    int
	FailureModeAllow bool
	// The connection manager's path handling, applied before routing and
	// ext_authz: normalize_path (RFC 3986 dot-segments, "%2e" included,
	// and "\" as "/"), merge_slashes, and path_with_escaped_slashes_action
	// REJECT_REQUEST (a 400 for %2F or %5C). Envoy's defaults are all off.
	NormalizePath, MergeSlashes, RejectEscapedSlashes bool
	// HeadersWithUnderscores is common_http_protocol_options'
	// headers_with_underscores_action, applied by the codec to every request
	// header name holding "_" before anything else: ALLOW (the default)
	// passes it, DROP_HEADER drops it, REJECT_REQUEST answers 400 to HTTP/1
	// and resets an HTTP/2 stream.
	HeadersWithUnderscores corev3.HttpProtocolOptions_HeadersWithUnderscoresAction
}

// underscores applies HeadersWithUnderscores; ok is false when the request
// is rejected.
func (f *Front) underscores(r *http.Request) (ok bool) {
	for k := range r.Header {
		if !strings.Contains(k, "_") {
			continue
		}
		switch f.HeadersWithUnderscores {
		case corev3.HttpProtocolOptions_REJECT_REQUEST:
			return false
		case corev3.HttpProtocolOptions_DROP_HEADER:
			r.Header.Del(k)
		}
	}
	return true
}

// normalize is the connection manager's path handling; ok is false when
// Envoy rejects the request.
func (f *Front) normalize(path string) (string, bool) {
	if f.RejectEscapedSlashes {
		l := strings.ToLower(path)
		if strings.Contains(l, "%2f") || strings.Contains(l, "%5c") {
			return "", false
		}
	}
	if f.NormalizePath {
		path = strings.ReplaceAll(path, `\`, "/")
		segs := strings.Split(path[1:], "/")
		var out []string
		for i, s := range segs {
			last := i == len(segs)-1
			switch strings.ToLower(s) {
			case ".", "%2e":
			case "..", ".%2e", "%2e.", "%2e%2e":
				if len(out) > 0 {
					out = out[:len(out)-1]
				}
			default:
				out = append(out, s)
				continue
			}
			if last {
				out = append(out, "")
			}
		}
		path = "/" + strings.Join(out, "/")
	}
	if f.MergeSlashes {
		for strings.Contains(path, "//") {
			path = strings.ReplaceAll(path, "//", "/")
		}
	}
	return path, true
}

func (f *Front) route(path string) (Route, bool) {
	for _, r := range f.Routes {
		if r.Path != "" && path == r.Path || r.Path == "" && strings.HasPrefix(path, r.Prefix) {
			return r, true
		}
	}
	return Route{}, false
}

func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !f.underscores(r) {
		if r.ProtoMajor >= 2 {
			panic(http.ErrAbortHandler) // net/http resets the stream
		}
		http.Error(w, "", http.StatusBadRequest)
		return
	}
	raw, query, hasQuery := strings.Cut(r.RequestURI, "?")
	path, ok := f.normalize(raw)
	if !ok {
		http.Error(w, "", http.StatusBadRequest) // escaped slashes rejected
		return
	}
	if path != raw { // what ext_authz and the upstream see
		r.RequestURI = path
		if hasQuery {
			r.RequestURI += "?" + query
		}
		u, err := url.ParseRequestURI(r.RequestURI)
		if err != nil {
			http.Error(w, "", http.StatusBadRequest)
			return
		}
		r.URL.Path, r.URL.RawPath = u.Path, u.RawPath
	}
	rt, ok := f.route(path)
	if !ok {
		http.Error(w, "", http.StatusNotFound) // Envoy: no route, 404
		return
	}
	req, err := f.checkRequest(r, rt)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// What the connection manager adds is forwarded upstream too.
	h := req.GetAttributes().GetRequest().GetHttp().GetHeaders()
	for _, k := range []string{"x-request-id", "x-forwarded-for", "x-forwarded-proto", "x-envoy-external-address"} {
		r.Header.Set(k, h[k])
	}
	var respHeaders []*corev3.HeaderValueOption
	if !rt.Disabled {
		timeout := f.Timeout
		if timeout == 0 {
			timeout = 200 * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		resp, err := f.Authz.Check(ctx, req)
		cancel()
		switch {
		case err != nil && f.FailureModeAllow:
			// let it through untouched
		case err != nil:
			code := f.StatusOnError
			if code == 0 {
				code = http.StatusForbidden
			}
			w.WriteHeader(code) // empty body
			return
		case codes.Code(resp.GetStatus().GetCode()) != codes.OK:
			d := resp.GetDeniedResponse()
			for _, hv := range d.GetHeaders() {
				apply(w.Header(), hv)
			}
			code := int(d.GetStatus().GetCode())
			if code == 0 {
				code = http.StatusForbidden
			}
			w.WriteHeader(code)
			_, _ = io.WriteString(w, d.GetBody())
			return
		default:
			ok := resp.GetOkResponse()
			for _, hv := range ok.GetHeaders() {
				apply(r.Header, hv)
			}
			for _, name := range ok.GetHeadersToRemove() {
				if strings.HasPrefix(name, ":") || strings.EqualFold(name, "host") {
					continue // Envoy ignores these
				}
				r.Header.Del(name)
			}
			respHeaders = ok.GetResponseHeadersToAdd()
		}
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(f.Upstream); pr.Out.Host = pr.In.Host },
		ModifyResponse: func(res *http.Response) error {
			for _, hv := range respHeaders {
				apply(res.Header, hv)
			}
			return nil
		},
	}
	proxy.ServeHTTP(w, r)
}

// apply adds one header the way Envoy ≤ 1.36 does: only `append` counts.
func apply(h http.Header, hv *corev3.HeaderValueOption) {
	k, v := hv.GetHeader().GetKey(), hv.GetHeader().GetValue()
	//lint:ignore SA1019 Envoy ≤ 1.36 honours only the deprecated field
	if hv.GetAppend().GetValue() {
		if len(h.Values(k)) > 0 {
			h.Add(k, v)
		}
		return
	}
	h.Set(k, v)
}

// checkRequest builds what Envoy sends for r (edge proxy, use_remote_address).
func (f *Front) checkRequest(r *http.Request, rt Route) (*authv3.CheckRequest, error) {
	var headers []string
	for k, vs := range r.Header {
		for _, v := range vs {
			headers = append(headers, k+": "+v)
		}
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	proto := "HTTP/1.1"
	if r.ProtoMajor == 2 {
		proto = "HTTP/2"
	}
	return checkreq.Build(checkreq.HTTP{
		Method: r.Method, URL: "http://" + r.Host + r.RequestURI, Headers: headers, SourceIP: host,
		ContextExtensions: rt.ContextExtensions, Protocol: proto,
	})
}
