// Package policy authorizes requests with Cedar: it loads *.cedar policies
// (ids from @id), an optional schema and static entities, maps an HTTP request
// to a Cedar principal, action, resource and context through a route table,
// and evaluates only the policies whose scope can match (an index that gives
// the same decisions, reasons and errors as a full scan). Errors never allow:
// an erroring forbid denies (Result.PolicyError) unless the set skips errors,
// and a routed service's request that matches no route is denied
// (Result.RouteUnknown) unless the set lets Cedar decide it. ModelSchema is
// the Cedar schema of what the set builds, merged with the user's. Loads are
// all-or-nothing; a failed reload keeps the last good set serving.
//
// A Request's Token is the verified token's view, internal/token.View,
// owned by that leaf package and built by identity; policy reads its Cedar
// record (context.token, built there at most once per cached token) and
// builds the rest of the context. The shape of that record is the schema's
// type Token (ModelSchema). policy imports neither identity nor authz.
package policy
