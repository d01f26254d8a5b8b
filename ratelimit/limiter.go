package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
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
// value can forge another key. It is built in one allocation: the values
// are read first (the first 8 kept on the stack, any further ones read
// again), then written into a string of their exact size.
func key(rule *Rule, r *Request) string {
	var stack [8]keyPart
	n := len(rule.Name)
	for i, k := range rule.Key {
		p := keyValue(k, r)
		if i < len(stack) {
			stack[i] = p
		}
		if p.len() > maxKeyPart {
			n += 2 + 2*sha256.Size
		} else {
			n += 2 + decimalLen(p.len()) + p.len()
		}
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(rule.Name)
	var digits [20]byte
	for i, k := range rule.Key {
		var p keyPart
		if i < len(stack) {
			p = stack[i]
		} else {
			p = keyValue(k, r)
		}
		if p.len() > maxKeyPart {
			b.WriteString("|#")
			b.WriteString(p.digest())
			continue
		}
		b.WriteByte('|')
		b.Write(strconv.AppendInt(digits[:0], int64(p.len()), 10))
		b.WriteByte(':')
		if p.principal {
			b.WriteString(p.typ)
			b.WriteString("::")
		}
		b.WriteString(p.v)
	}
	return b.String()
}

// maxKeyPart is the longest value a bucket key holds as it is; a longer
// one (a 90 KiB header) is held as "#" and the hex SHA-256 of the value,
// so that a key costs the same in memory and in Redis however long the
// caller makes it ("#" cannot start a length, so no value can forge it).
const maxKeyPart = 64

// digest is the hex SHA-256 of the part's value (typ::v for a principal).
func (p keyPart) digest() string {
	h := sha256.New()
	if p.principal {
		h.Write([]byte(p.typ))
		h.Write([]byte("::"))
	}
	h.Write([]byte(p.v))
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// keyPart is one value of a bucket key: typ::v for a principal, else v.
type keyPart struct {
	typ, v    string
	principal bool
}

func (p keyPart) len() int {
	if p.principal {
		return len(p.typ) + 2 + len(p.v)
	}
	return len(p.v)
}

// keyValue is r's value for key part k (principal, header:NAME, ...).
func keyValue(k string, r *Request) keyPart {
	var p keyPart
	switch name, arg, _ := strings.Cut(k, ":"); name {
	case "principal":
		p = keyPart{typ: r.PrincipalType, v: r.Principal, principal: true}
	case "client_id":
		p.v = r.ClientID
	case "source_ip":
		p.v = r.SourceIP
	case "service":
		p.v = r.Service
	case "route":
		p.v = r.Route
	case "action":
		p.v = r.Action
	case "header":
		if r.Header != nil {
			p.v = r.Header(arg)
		}
	case "claim":
		if r.Claim != nil {
			p.v = r.Claim(arg)
		}
	}
	return p
}

// decimalLen is the number of digits of n ≥ 0.
func decimalLen(n int) int {
	d := 1
	for ; n >= 10; n /= 10 {
		d++
	}
	return d
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
	outs, err := l.counter.Take(ctx, l.now(), slices.Clone(bs))
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
