// Package methods holds the one rule, shared by the policy model and the
// rate limiter, of which HTTP methods read and which write.
package methods

// Read reports whether method only reads: GET, HEAD and OPTIONS (Cedar's
// Action::"read" group and a rate-limit rule's method group "read").
// Every other method, TRACE and unknown ones included, writes.
func Read(method string) bool {
	switch method {
	case "GET", "HEAD", "OPTIONS":
		return true
	}
	return false
}
