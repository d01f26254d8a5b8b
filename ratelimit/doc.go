// Package ratelimit holds Warden's shared state: GCRA rate limiting by rules,
// and token revocations (by jti, or everything a subject got before a time).
// Stores are in memory (one instance) or, later, Redis (many replicas).
package ratelimit
