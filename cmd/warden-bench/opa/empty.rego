# The "empty policy" of warden-bench's side by side with OPA-Envoy
# (BENCHMARKS.md): every request is allowed, so what is measured is
# OPA-Envoy itself (gRPC, turning the CheckRequest into Rego input, one
# evaluation), the floor under any real policy. Decision path
# envoy/authz/allow.
package envoy.authz

default allow := true
