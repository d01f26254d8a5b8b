// Package httpauthz serves Warden's pipeline over plain HTTP, for the
// proxies that delegate authorization to an HTTP endpoint: Envoy's ext_authz
// HTTP service (and Istio's envoyExtAuthzHttp provider), nginx
// auth_request, Traefik ForwardAuth and Caddy forward_auth.
//
// A Handler turns each HTTP request into the CheckRequest Envoy would have
// sent over gRPC and runs the same authz.Authorizer.Evaluate, so the two
// transports cannot decide differently; it then writes the CheckResponse as
// the HTTP answer that proxy understands.
//
// Which request is judged:
//   - Envoy's HTTP service (no forwarded method or URI): the request line
//     is the client's method and path (server.http_authz.path_prefix
//     stripped), the Host its authority, the headers those Envoy forwards
//     (allowed_headers).
//   - Forward auth (Traefik, Caddy: X-Forwarded-Method and -Uri; nginx:
//     X-Original-Method and -URI): the method and URI come from those
//     headers, the host from X-Forwarded-Host, the scheme from
//     X-Forwarded-Proto, and the client from X-Forwarded-For. They are
//     believed only from a trusted proxy (server.http_authz.trusted_proxies):
//     from any other peer a forwarded method or URI is refused (400, reason
//     request_invalid), and -Host, -Proto, -For are ignored. Spellings that
//     disagree, repeat, or are malformed are refused too.
//   - From a trusted proxy the client is the last X-Forwarded-For address
//     (the one the proxy added), and X-Forwarded-Client-Cert is passed on
//     (identity.workloads.trust_xfcc still decides whether it is read);
//     from any other peer the client is the TCP peer and XFCC is dropped.
package httpauthz
