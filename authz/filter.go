package authz

import "time"

// Filter selects decision records (warden logs, the admin API).
type Filter struct {
	Since     time.Time
	Decision  string // allow | deny
	Principal string // exact, e.g. User::"corp|alice"
	Action    string // exact Cedar action, e.g. Action::"GET /orders/{id}"
	Status    int
}

// Match reports whether r passes the filter.
func (f Filter) Match(r *Record) bool {
	switch {
	case !f.Since.IsZero() && r.Time.Before(f.Since):
		return false
	case f.Decision != "" && r.Decision != f.Decision:
		return false
	case f.Principal != "" && r.Principal != f.Principal:
		return false
	case f.Action != "" && r.Action != f.Action:
		return false
	case f.Status != 0 && r.Status != f.Status:
		return false
	}
	return true
}
