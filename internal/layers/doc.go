// Package layers states, and its test enforces, what each of Warden's
// packages may import (issue 20: a newcomer should be able to tell where a
// stage lives and what it may depend on):
//
//	identity, policy, ratelimit   the leaves: nothing of authz, nor of each
//	                              other; internal helpers only
//	internal/token                the verified token's one view: nothing of
//	                              Warden but cedar-go
//	authz/decisionlog             records, sinks, sources: policy (for the
//	                              logged Cedar request), never authz
//	authz                         the pipeline: the leaves and decisionlog,
//	                              never a package that assembles or serves it
//	authz/server, cmd/warden      assemble and serve everything
//
// Test files may import more (helpers, oidctest, redistest).
package layers
