package decisionlog

import (
	"time"

	"github.com/wardenauthz/warden/policy"
)

// Record is one decision log entry (SPEC §8). It never holds a token,
// cookie or authorization header.
type Record struct {
	Time       time.Time        `json:"time"`
	DecisionID string           `json:"decision_id"`
	Decision   Decision         `json:"decision"`
	Status     int              `json:"status"`
	Reason     Reason           `json:"reason"`
	Policies   []string         `json:"policies"`
	Errors     []string         `json:"errors,omitempty"`
	Principal  string           `json:"principal,omitempty"`
	Action     string           `json:"action,omitempty"`
	Resource   string           `json:"resource,omitempty"`
	Request    RecordRequest    `json:"request"`
	Token      *RecordToken     `json:"token,omitempty"`
	Workload   string           `json:"workload,omitempty"`
	RateLimit  *RecordRateLimit `json:"ratelimit,omitempty"`
	LatencyUS  int64            `json:"latency_us"`
	Node       string           `json:"node,omitempty"`
	// Detail is the explanation given to the client on a deny.
	Detail string `json:"detail,omitempty"`
	// Truncated says a string of the record was cut to
	// decision_log.max_field_bytes, a list to its first 64, or the Cedar
	// section left out to keep the record within
	// decision_log.max_record_bytes.
	Truncated bool `json:"truncated,omitempty"`
	// Cedar is the Cedar request of a decision that reached the policies,
	// kept with decision_log.replayable for warden replay and
	// access-review.
	Cedar *policy.Logged `json:"cedar,omitempty"`
	// Transport is how the decision was asked for: grpc (an Envoy Check),
	// http (server.http_authz_addr) or authzen (the AuthZEN evaluation API).
	Transport string `json:"transport,omitempty"`
	// Caller is who asked an AuthZEN evaluation (the enforcement point:
	// "token:FILE:LINE", a client certificate id, or "ISSUER|SUB"), never
	// a credential.
	Caller string `json:"caller,omitempty"`

	// held is the request memory the Cedar section may reference until
	// the decision log bounds it; cost is the record's estimated size in
	// memory.
	held, cost int
	// synced, on a marker Sync queued (no record), is closed once every
	// record before it is written and flushed.
	synced chan struct{}
}

// RecordRequest is the logged part of the HTTP request.
type RecordRequest struct {
	Method    string `json:"method,omitempty"`
	Host      string `json:"host,omitempty"`
	Path      string `json:"path,omitempty"`
	SourceIP  string `json:"source_ip,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// RecordToken identifies a token without holding it.
type RecordToken struct {
	Iss string    `json:"iss"`
	Jti string    `json:"jti,omitempty"`
	Exp time.Time `json:"exp,omitzero"`
}

// RecordRateLimit is the rate-limit rule that applied.
type RecordRateLimit struct {
	Rule      string `json:"rule"`
	Remaining int    `json:"remaining"`
}

// Hold notes that r's Cedar section may reference n bytes of the request's
// memory until the decision log bounds it (DecisionLog.Record counts them
// against its buffer). It does nothing when r has no Cedar section.
func (r *Record) Hold(n int) {
	if r.Cedar != nil {
		r.held = n
	}
}
