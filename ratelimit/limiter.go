package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wardenauthz/warden/internal/methods"
)

// Request is what rules match and key on.
type Request struct {
	PrincipalType string
	Principal     string // entity id, e.g. corp|alice
	Groups        []string
	Action        string // Cedar action id, e.g. "GET /orders/{id}"
	Method        string
	Service       string
	Route         string // route template, "" when none matched
	SourceIP      string
	ClientID      string
	Header        func(name string) string
	Claim         func(name string) string
}

// Decision is the outcome of applying every matching rule.
type Decision struct {
	Allowed bool
	// Rule is the most restrictive matching rule ("" when none matched).
	Rule       string
	Limit      int
	Window     time.Duration
	Remaining  int
	Reset      time.Duration
	RetryAfter time.Duration
}

// Matched reports whether any rule applied.
func (d Decision) Matched() bool { return d.Rule != "" }

// Bucket is one GCRA step: the key's theoretical arrival time advances by
// interval if the result stays within tolerance.
type Bucket struct {
	Key       string
	Interval  time.Duration // per / limit
	Tolerance time.Duration // interval * burst
}

// Outcome of one Bucket step.
type Outcome struct {
	Allowed    bool
	Remaining  int
	Reset      time.Duration // until the bucket is full again
	RetryAfter time.Duration
}

// Counter applies GCRA steps to buckets: all or none of a Check's buckets
// advance (a denied request consumes nothing).
type Counter interface {
	Take(ctx context.Context, now time.Time, buckets []Bucket) ([]Outcome, error)
}

// Limiter applies the configured rules through a Counter.
type Limiter struct {
	rules   []Rule
	counter Counter
	now     func() time.Time
}

// NewLimiter builds a Limiter; now defaults to time.Now.
func NewLimiter(rules []Rule, c Counter, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{rules: rules, counter: c, now: now}
}

func (w When) matches(r *Request) bool {
	if w.PrincipalType != "" && w.PrincipalType != r.PrincipalType {
		return false
	}
	if w.Principal != "" && w.Principal != r.Principal {
		return false
	}
	if w.Group != "" {
		found := false
		for _, g := range r.Groups {
			if g == w.Group {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if w.Action != "" && w.Action != r.Action && w.Action != r.Method {
		return false
	}
	if w.ActionGroup != "" && w.ActionGroup != methodGroup(r.Method) {
		return false
	}
	if w.Service != "" && w.Service != r.Service {
		return false
	}
	if w.Route != "" && w.Route != r.Route {
		return false
	}
	return true
}

func methodGroup(m string) string {
	if methods.Read(m) {
		return "read"
	}
	return "write"
}

// key builds the bucket key of rule for r; parts are length-prefixed so no
// value can forge another key.
func key(rule *Rule, r *Request) string {
	var b strings.Builder
	b.WriteString(rule.Name)
	for _, k := range rule.Key {
		var v string
		switch name, arg, _ := strings.Cut(k, ":"); name {
		case "principal":
			v = r.PrincipalType + "::" + r.Principal
		case "client_id":
			v = r.ClientID
		case "source_ip":
			v = r.SourceIP
		case "service":
			v = r.Service
		case "route":
			v = r.Route
		case "action":
			v = r.Action
		case "header":
			if r.Header != nil {
				v = r.Header(arg)
			}
		case "claim":
			if r.Claim != nil {
				v = r.Claim(arg)
			}
		}
		b.WriteByte('|')
		b.WriteString(strconv.Itoa(len(v)))
		b.WriteByte(':')
		b.WriteString(v)
	}
	return b.String()
}

// Allow applies every matching rule.
func (l *Limiter) Allow(ctx context.Context, r *Request) (Decision, error) {
	var (
		buckets [4]Bucket
		bs      = buckets[:0]
		matched [4]*Rule
		ms      = matched[:0]
	)
	for i := range l.rules {
		rule := &l.rules[i]
		if !rule.When.matches(r) {
			continue
		}
		interval := rule.Per / time.Duration(rule.Limit)
		bs = append(bs, Bucket{Key: key(rule, r), Interval: interval, Tolerance: interval * time.Duration(max(rule.Burst, 1))})
		ms = append(ms, rule)
	}
	if len(bs) == 0 {
		return Decision{Allowed: true}, nil
	}
	outs, err := l.counter.Take(ctx, l.now(), bs)
	if err != nil {
		return Decision{}, fmt.Errorf("rate limit: %w", err)
	}
	d := Decision{Allowed: true, Remaining: -1}
	for i, o := range outs {
		worse := d.Remaining < 0 || !o.Allowed && d.Allowed || o.Allowed == d.Allowed && o.Remaining < d.Remaining
		if !o.Allowed {
			d.Allowed = false
			d.RetryAfter = max(d.RetryAfter, o.RetryAfter)
		}
		if worse {
			d.Rule, d.Limit, d.Window, d.Remaining, d.Reset = ms[i].Name, ms[i].Limit, ms[i].Per, o.Remaining, o.Reset
		}
	}
	return d, nil
}

// gcra computes one step from the stored theoretical arrival time (tat,
// zero when none). It returns the outcome and the new tat (unchanged when
// denied).
func gcra(now time.Time, tat time.Time, b Bucket) (Outcome, time.Time) {
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(b.Interval)
	if over := next.Sub(now) - b.Tolerance; over > 0 {
		return Outcome{Allowed: false, Remaining: 0, RetryAfter: over, Reset: tat.Sub(now)}, tat
	}
	remaining := int((b.Tolerance - next.Sub(now)) / b.Interval)
	return Outcome{Allowed: true, Remaining: remaining, Reset: next.Sub(now)}, next
}
