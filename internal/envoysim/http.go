package envoysim

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wardenauthz/warden/envoy/envoycheck"
)

// HTTPService is ext_authz's http_service client as Envoy implements it
// (source/extensions/filters/common/ext_authz/ext_authz_http_impl.cc),
// standing in for the gRPC client so that a Front can use either:
//   - the request to the service has the client's method, path_prefix +
//     :path, and of the CheckRequest's headers those allowed_headers
//     matches plus authorization, :method, :path and :authority (as Host);
//     content-length is Envoy's own (0);
//   - a 5xx answer is a failure (status_on_error); 200 allows, with the
//     headers allowed_upstream_headers matches set upstream,
//     x-envoy-auth-headers-to-remove's names removed, and the headers
//     allowed_client_headers_on_success matches sent to the client; any
//     other status denies with that status, its body, and the headers
//     allowed_client_headers matches (when empty: all but host; when set:
//     also status, content-length, www-authenticate and location).
type HTTPService struct {
	URL        *url.URL // the service's base URL (server_uri)
	PathPrefix string
	// The matchers of allowed_headers and authorization_response.
	Allowed, Upstream, Client, ClientOnSuccess []*matcherv3.StringMatcher
	HTTP                                       *http.Client
}

var _ authv3.AuthorizationClient = (*HTTPService)(nil)

// FromFileHTTP is FromFile for a bootstrap whose ext_authz filter uses
// http_service: the Front calls the service at base (server_uri's host
// stands for a cluster), with server_uri's timeout.
func FromFileHTTP(file string, base, upstream *url.URL, client *http.Client) (*Front, error) {
	az, err := extAuthz(file)
	if err != nil {
		return nil, err
	}
	hs := az.GetHttpService()
	if hs == nil {
		return nil, fmt.Errorf("%s: the ext_authz filter has no http_service", file)
	}
	svc := &HTTPService{URL: base, PathPrefix: hs.GetPathPrefix(), HTTP: client,
		Allowed:         az.GetAllowedHeaders().GetPatterns(),
		Upstream:        hs.GetAuthorizationResponse().GetAllowedUpstreamHeaders().GetPatterns(),
		Client:          hs.GetAuthorizationResponse().GetAllowedClientHeaders().GetPatterns(),
		ClientOnSuccess: hs.GetAuthorizationResponse().GetAllowedClientHeadersOnSuccess().GetPatterns(),
	}
	//lint:ignore SA1019 Envoy still reads the deprecated place when the new one is unset
	if old := hs.GetAuthorizationRequest().GetAllowedHeaders().GetPatterns(); len(svc.Allowed) == 0 {
		svc.Allowed = old
	}
	if svc.HTTP == nil {
		svc.HTTP = http.DefaultClient
	}
	f, err := FromFile(file, svc, upstream)
	if err != nil {
		return nil, err
	}
	f.Timeout = hs.GetServerUri().GetTimeout().AsDuration()
	return f, nil
}

func extAuthz(file string) (*extauthzv3.ExtAuthz, error) {
	bs, err := envoycheck.LoadBootstrap(file)
	if err != nil {
		return nil, err
	}
	for _, l := range bs.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, flt := range fc.GetFilters() {
				var hcm hcmv3.HttpConnectionManager
				if flt.GetTypedConfig().UnmarshalTo(&hcm) != nil {
					continue
				}
				for _, hf := range hcm.GetHttpFilters() {
					var az extauthzv3.ExtAuthz
					if hf.GetTypedConfig().UnmarshalTo(&az) == nil {
						return &az, nil
					}
				}
			}
		}
	}
	return nil, fmt.Errorf("%s: no ext_authz filter", file)
}

func matches(ms []*matcherv3.StringMatcher, key string) bool {
	for _, m := range ms {
		k, v := key, ""
		switch p := m.GetMatchPattern().(type) {
		case *matcherv3.StringMatcher_Exact:
			v = p.Exact
		case *matcherv3.StringMatcher_Prefix:
			v = p.Prefix
		case *matcherv3.StringMatcher_Suffix:
			v = p.Suffix
		case *matcherv3.StringMatcher_Contains:
			v = p.Contains
		default:
			continue // regexes are not simulated
		}
		if m.GetIgnoreCase() {
			k, v = strings.ToLower(k), strings.ToLower(v)
		}
		var ok bool
		switch m.GetMatchPattern().(type) {
		case *matcherv3.StringMatcher_Exact:
			ok = k == v
		case *matcherv3.StringMatcher_Prefix:
			ok = strings.HasPrefix(k, v)
		case *matcherv3.StringMatcher_Suffix:
			ok = strings.HasSuffix(k, v)
		case *matcherv3.StringMatcher_Contains:
			ok = strings.Contains(k, v)
		}
		if ok {
			return true
		}
	}
	return false
}

// Check sends req to the service as Envoy's HTTP client does and reads the
// answer back as a CheckResponse.
func (s *HTTPService) Check(ctx context.Context, req *authv3.CheckRequest, _ ...grpc.CallOption) (*authv3.CheckResponse, error) {
	h := req.GetAttributes().GetRequest().GetHttp()
	hr, err := http.NewRequestWithContext(ctx, h.GetMethod(), s.URL.String(), http.NoBody)
	if err != nil {
		return nil, err
	}
	hr.URL.Opaque = s.PathPrefix + h.GetPath() // the path as Envoy sends it, unparsed
	for k, v := range h.GetHeaders() {
		switch {
		case k == ":authority":
			hr.Host = v
		case k == "content-length" || strings.HasPrefix(k, ":"):
		case k == "authorization" || matches(s.Allowed, k):
			hr.Header.Add(k, v)
		}
	}
	resp, err := s.HTTP.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 500 {
		return nil, fmt.Errorf("authorization service answered %d", resp.StatusCode)
	}
	opt := func(k, v string) *corev3.HeaderValueOption {
		//lint:ignore SA1019 Envoy's HTTP client overwrites: append false
		return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}, Append: wrapperspb.Bool(false)}
	}
	if resp.StatusCode == http.StatusOK {
		ok := &authv3.OkHttpResponse{}
		for k, vs := range resp.Header {
			lk := strings.ToLower(k)
			if lk == "x-envoy-auth-headers-to-remove" {
				for _, v := range vs {
					for _, n := range strings.Split(v, ",") {
						if n = strings.TrimSpace(n); n != "" {
							ok.HeadersToRemove = append(ok.HeadersToRemove, strings.ToLower(n))
						}
					}
				}
				continue
			}
			for _, v := range vs {
				if matches(s.Upstream, lk) {
					ok.Headers = append(ok.Headers, opt(lk, v))
				}
				if matches(s.ClientOnSuccess, lk) {
					ok.ResponseHeadersToAdd = append(ok.ResponseHeadersToAdd, opt(lk, v))
				}
			}
		}
		return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.OK)}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok}}, nil
	}
	d := &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode(resp.StatusCode)}, Body: string(body)}
	always := []string{"content-length", "www-authenticate", "location"}
	for k, vs := range resp.Header {
		lk := strings.ToLower(k)
		var pass bool
		if len(s.Client) == 0 {
			pass = lk != "host"
		} else {
			pass = matches(s.Client, lk) || contains(always, lk)
		}
		if pass && lk != "x-envoy-auth-headers-to-remove" {
			for _, v := range vs {
				d.Headers = append(d.Headers, opt(lk, v))
			}
		}
	}
	return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)}, HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: d}}, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
