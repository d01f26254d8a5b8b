package authz

import (
	"time"

	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/policy"
)

// TransportAuthZEN is Record.Transport for a decision asked for through the
// AuthZEN evaluation API.
const TransportAuthZEN = "authzen"

// PolicySet is the policy set in service, for decision APIs other than
// Check (AuthZEN) that evaluate through the same engine.
func (a *Authorizer) PolicySet() *policy.Set { return a.o.Policies.Current() }

// Node is the replica's name in decision records.
func (a *Authorizer) Node() string { return a.o.Node }

// Now is the Authorizer's clock.
func (a *Authorizer) Now() time.Time { return a.o.Now() }

// Finish accounts for a decision taken outside Check exactly as Check does:
// its latency, the decision metrics, and the decision log (every deny,
// allows as decision_log.sample_allow says).
// held is the memory of the request the record's Cedar section may
// reference until the decision log bounds it (the request body's size).
func (a *Authorizer) Finish(rec *decisionlog.Record, took time.Duration, held int) {
	rec.LatencyUS = took.Microseconds()
	a.o.Metrics.observe(rec, took)
	if a.o.Recorder != nil && (rec.Decision == Deny || a.sampled()) {
		rec.Hold(held)
		a.o.Recorder.Record(rec)
	}
}

// NewDecisionID is a fresh decision id, as Check's records carry.
func NewDecisionID() string { return newDecisionID() }
