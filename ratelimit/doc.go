// Package ratelimit holds Warden's shared state: rate limiting and token
// revocation.
//
// Rate limiting (limiter.go, config.go) is GCRA by rules: a Limiter turns a
// request into buckets, a Counter takes from them. Revocation
// (revocation.go) is a list of revoked tokens, by jti (RevokeJTI) or every
// token a subject got before a time (RevokeSubject), with one rule for how
// long an entry is kept (RevocationTTL, RevocationGrace).
//
// A Store holds both, in one of two implementations:
//   - Memory (memory.go, revocation_memory.go): one instance's state, in
//     process, bounded.
//   - Redis (redis.go, revocation_redis.go): shared by every replica; buckets
//     in Redis on Redis's clock, revocations persisted in Redis and served
//     from a local mirror kept fresh by pub/sub and a periodic resync, failing
//     closed (ErrStale) when it grows older than MaxStaleness.
//
// The package imports nothing of Warden's (redistest starts a real
// redis-server for tests).
package ratelimit
