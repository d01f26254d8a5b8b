# The "RBAC + verified JWT" policy of warden-bench's side by side with
# OPA-Envoy (BENCHMARKS.md), decision path envoy/authz/result. It gives the
# answers Warden gives for the benchmark's request mix:
#
#   reader GET, scope orders:read        allow
#   admin DELETE, acr mfa                allow
#   reader DELETE                        403
#   no token                             401
#   expired (or forged, wrong issuer,
#   wrong audience, not RS256) token     401
#
# The access token is verified with io.jwt.decode_verify against the
# issuer's JWKS (RS256 only; iss, aud, exp and nbf checked), which
# warden-bench writes into data.json as data.bench.jwks and
# data.bench.issuer. OPA's cache of verified tokens (the inter-query
# builtin value cache named io_jwt) is off by default and stays off here.
package envoy.authz

# Deny unless proven otherwise: without a verified token, 401.
default result := {"allowed": false, "http_status": 401}

result := {"allowed": true, "headers": {"x-subject": claims.sub}} if allow

result := {"allowed": false, "http_status": 403} if {
	claims
	not allow
}

http := input.attributes.request.http

bearer := t if {
	[scheme, t] := split(http.headers.authorization, " ")
	lower(scheme) == "bearer"
}

claims := payload if {
	[valid, _, payload] := io.jwt.decode_verify(bearer, {
		"cert": data.bench.jwks,
		"alg": "RS256",
		"iss": data.bench.issuer,
		"aud": "api://orders",
	})
	valid
}

# Roles come from the token's groups claim.
role_permissions := {
	"admins": [{"methods": {"GET", "POST", "DELETE"}, "scope": ""}],
	"readers": [{"methods": {"GET"}, "scope": "orders:read"}],
}

# The routes of Service "orders": /v1/orders and /v1/orders/{id}.
orders_route if input.parsed_path == ["v1", "orders"]

orders_route if {
	count(input.parsed_path) == 3
	input.parsed_path[0] == "v1"
	input.parsed_path[1] == "orders"
}

allow if {
	orders_route
	some group in claims.groups
	some p in role_permissions[group]
	http.method in p.methods
	scope_ok(p.scope)
	mfa_ok
}

scope_ok("")

scope_ok(s) if s in split(claims.scope, " ")

# DELETE needs a token from a multi-factor login.
mfa_ok if http.method != "DELETE"

mfa_ok if claims.acr == "mfa"
