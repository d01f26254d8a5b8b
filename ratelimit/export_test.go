package ratelimit

// SetAfterScan sets a function resync runs between its scan of Redis and
// its replace of the mirror. Call it before Start.
func SetAfterScan(r *Redis, f func()) { r.afterScan = f }
