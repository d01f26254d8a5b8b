package envoycheck

import (
	"fmt"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	netauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The security lint: settings Envoy accepts that weaken what Warden
// enforces. They are warnings (Problem.Warning); `warden envoy validate
// --strict` treats them as errors.

// MaxAuthzTimeout is the longest ext_authz timeout the lint accepts.
const MaxAuthzTimeout = time.Second

// MaxBodyBytes is Warden's default server.limits.max_body_bytes: a larger
// with_request_body buffer only gets 413 from Warden.
const MaxBodyBytes = 1 << 20

func (c *checker) warn(path, hint, format string, args ...any) {
	c.add(path, format, args...)
	c.problems[len(c.problems)-1].Warning = true
	c.problems[len(c.problems)-1].Hint = hint
}

// lintHCM checks the path and header handling of a connection manager whose
// requests Warden authorizes: Warden and the upstream must read every
// request alike (SECURITY.md, "Paths").
func (c *checker) lintHCM(p string, h *hcmv3.HttpConnectionManager) {
	if !h.GetNormalizePath().GetValue() {
		c.warn(join(p, "normalize_path"), "set normalize_path: true",
			"normalize_path is not true: /public/../admin reaches Warden and the upstream as sent, and the upstream may resolve it to a path Warden never judged")
	}
	if !h.GetMergeSlashes() {
		c.warn(join(p, "merge_slashes"), "set merge_slashes: true",
			"merge_slashes is not true: //admin and /admin are different paths to Envoy's routes and to Warden, the same to many upstreams")
	}
	switch a := h.GetPathWithEscapedSlashesAction(); a {
	case hcmv3.HttpConnectionManager_REJECT_REQUEST, hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT, hcmv3.HttpConnectionManager_UNESCAPE_AND_FORWARD:
	default:
		c.warn(join(p, "path_with_escaped_slashes_action"), "set path_with_escaped_slashes_action: REJECT_REQUEST",
			"path_with_escaped_slashes_action is %s: /a%%2F..%%2Fadmin reaches the upstream undecoded, which may read %%2F as /", a)
	}
	switch a := h.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction(); a {
	case corev3.HttpProtocolOptions_REJECT_REQUEST, corev3.HttpProtocolOptions_DROP_HEADER:
	default:
		c.warn(join(p, "common_http_protocol_options.headers_with_underscores_action"),
			"set common_http_protocol_options.headers_with_underscores_action: REJECT_REQUEST",
			"headers with underscores are allowed (headers_with_underscores_action %s): a client's x_user_id passes Warden's removal of spoofed x-user-id, and upstreams that read _ as - (CGI, nginx, Django) take it for the identity header", a)
	}
}

// lintAuthz checks an HTTP ext_authz filter's failure mode, timeout and body.
func (c *checker) lintAuthz(p string, az *extauthzv3.ExtAuthz) {
	c.lintFailOpen(join(p, "failure_mode_allow"), az.GetFailureModeAllow())
	if g := az.GetGrpcService(); g != nil {
		c.lintTimeout(join(p, "grpc_service.timeout"), g.GetTimeout())
	}
	if h := az.GetHttpService(); h != nil {
		c.lintTimeout(join(p, "http_service.server_uri.timeout"), h.GetServerUri().GetTimeout())
	}
	if b := az.GetWithRequestBody(); b != nil {
		bp := join(p, "with_request_body")
		if b.GetAllowPartialMessage() {
			c.warn(join(bp, "allow_partial_message"), "set allow_partial_message: false (bodies over max_request_bytes get 413)",
				"allow_partial_message: true: Warden judges only the first %d bytes of a longer body, which reaches the upstream whole", b.GetMaxRequestBytes())
		}
		if n := b.GetMaxRequestBytes(); n > MaxBodyBytes {
			c.warn(join(bp, "max_request_bytes"), fmt.Sprintf("set max_request_bytes: %d or less", MaxBodyBytes),
				"max_request_bytes: %d: Envoy buffers that much of every request, and Warden refuses bodies over server.limits.max_body_bytes (%d by default) with 413", n, MaxBodyBytes)
		}
	}
}

// lintNetAuthz checks a network ext_authz filter.
func (c *checker) lintNetAuthz(p string, az *netauthzv3.ExtAuthz) {
	c.lintFailOpen(join(p, "failure_mode_allow"), az.GetFailureModeAllow())
	if g := az.GetGrpcService(); g != nil {
		c.lintTimeout(join(p, "grpc_service.timeout"), g.GetTimeout())
	}
}

func (c *checker) lintFailOpen(p string, allow bool) {
	if allow {
		c.warn(p, "set failure_mode_allow: false, with status_on_error: {code: ServiceUnavailable}",
			"failure_mode_allow: true: when Warden is unreachable, slow or failing, requests reach the upstream unauthorized")
	}
}

func (c *checker) lintTimeout(p string, d *durationpb.Duration) {
	if d != nil && d.AsDuration() > MaxAuthzTimeout {
		c.warn(p, "0.25s is plenty: Warden answers in well under a millisecond",
			"ext_authz timeout %s is over %s: a stalled Warden holds every request that long before Envoy answers 503", d.AsDuration(), MaxAuthzTimeout)
	}
}
