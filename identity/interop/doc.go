// Package interop holds Warden's interoperability tests against a real,
// certified OpenID Provider: the oidc-provider npm package, pinned in
// testdata/provider and driven by testdata/provider/provider.js. Run them
// with `go tool task interop` (which installs the provider with npm ci);
// `go tool task test` runs them too, and requires them (WARDEN_REQUIRE_INTEROP=1).
package interop
