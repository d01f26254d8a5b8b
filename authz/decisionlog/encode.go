package decisionlog

import (
	"github.com/cedar-policy/cedar-go"

	"github.com/wardenauthz/warden/internal/credential"
	"github.com/wardenauthz/warden/policy"
)

// encode is bounded's line for a record no Ring keeps, written without
// copying r when nothing of it needs cutting: its strings are redacted
// into a copy of the Record only (a token, rate limit or list copied when
// one of its strings changes), and its Cedar section, measured first, is
// encoded as it is when it fits and nothing in it is redacted. A record
// over MaxRecordBytes, or whose Cedar section needs redacting or leaving
// out, takes bounded's way. r is never written (the pipeline may still
// read it); a differential test holds the lines equal to bounded's. The
// copy is the log's scratch record (the log goroutine's alone), not a new
// one per record.
func (l *DecisionLog) encode(buf []byte, r *Record) []byte {
	c := &l.scratch
	*c = *r
	defer func() { *c = Record{} }() // keep nothing of r past its line
	c.redactOff(l.lim.MaxFieldBytes)
	if r.Cedar != nil {
		fits, redacts := measureCedar(r.Cedar, l.lim.MaxFieldBytes, l.lim.MaxRecordBytes)
		if !fits || redacts {
			_, buf = l.bounded(buf, r)
			return buf
		}
	}
	buf, _ = appendJSON(buf[:0], c)
	if len(buf) > l.lim.MaxRecordBytes {
		_, buf = l.bounded(buf, r)
	}
	return buf
}

// redactOff is clip(max, false, true), the log goroutine's, for a copy of
// a record: the same fields (eachField), written in c only. Its token and
// rate limit, shared with the record it copies, are copied first (a few
// bytes each); its lists only when one of their strings changes.
func (c *Record) redactOff(max int) {
	if t := c.Token; t != nil {
		t := *t
		c.Token = &t
	}
	if rl := c.RateLimit; rl != nil {
		rl := *rl
		c.RateLimit = &rl
	}
	c.eachField(func(p *string, path bool) {
		if v, changed := c.redactStr(*p, max, path, p == &c.Request.Host); changed {
			*p = v
		}
	})
	if h, hit := credential.RedactHost(c.Request.Host); hit { // as clip
		c.Request.Host = h
	}
	c.Policies = c.redactList(c.Policies, max)
	c.Errors = c.redactList(c.Errors, max)
}

// redactStr is s cut to max bytes (c marked truncated) and redacted, and
// whether that changed it.
func (c *Record) redactStr(s string, max int, path, host bool) (string, bool) {
	changed := false
	if len(s) > max {
		s, changed = cutField(s, max, host), true
		c.Truncated = true
	}
	if red, hit := credential.Redact(s, path); hit {
		s, changed = red, true
	}
	return s, changed
}

// redactList is l capped at maxListed with its strings cut and redacted,
// copied only when one changes.
func (c *Record) redactList(l []string, max int) []string {
	if len(l) > maxListed {
		l = l[:maxListed:maxListed]
		c.Truncated = true
	}
	copied := false
	for i, v := range l {
		if red, changed := c.redactStr(v, max, false, false); changed {
			if !copied {
				l, copied = append([]string(nil), l...), true
			}
			l[i] = red
		}
	}
	return l
}

// measureCedar is what boundCedar would find of l, without building its
// copy: whether it fits (no string over maxField, at most budget bytes in
// all, each value costed as boundCedar costs it), and whether the
// redaction would change any string of it.
// When it fits and nothing would change, l encodes exactly as its bounded
// copy does.
func measureCedar(l *policy.Logged, maxField, budget int) (fits, redacts bool) {
	m := cedarMeasure{maxField: maxField}
	m.walk(l)
	if m.failed || m.used > budget {
		return false, false
	}
	return true, m.redacts
}

func (m *cedarMeasure) walk(l *policy.Logged) {
	m.uid(l.Principal, false)
	m.uid(l.Action, true)
	m.uid(l.Resource, true)
	for _, u := range l.Parents {
		m.uid(u, false)
	}
	for _, u := range l.ResourceParents {
		m.uid(u, false)
	}
	stated := l.Source == policy.SourceAuthZEN
	if l.Attrs != nil {
		m.record(*l.Attrs, stated)
	}
	if l.ResourceAttrs != nil {
		m.record(*l.ResourceAttrs, true)
	}
	for k, v := range l.Context.All() {
		if m.failed {
			break
		}
		switch k {
		case "request", "path_params", "extensions":
			m.str(k, false, plainText)
			m.value(v, true, kindOf(k == "path_params", k))
		default:
			m.str(k, stated, plainText)
			m.value(v, stated, kindOf(false, k))
			if reservedKey(k) && !m.count {
				m.redacts = true // left out of the bounded copy
			}
		}
	}
}

// cedarMeasure walks a Cedar section as cedarBounder does, counting
// instead of copying: used as cedarBounder counts it, and either whether
// a redaction would change a string (redacts) or, with count, the bytes of
// its strings (bytes).
type cedarMeasure struct {
	maxField, used, bytes  int
	failed, redacts, count bool
}

func (m *cedarMeasure) str(s cedar.String, redact bool, k textKind) {
	if len(s) > m.maxField {
		m.failed = true
		return
	}
	m.used += len(s) + valueCost
	if m.count {
		m.bytes += len(s)
	} else if !m.redacts {
		_, m.redacts = cedarText(string(s), redact, k)
	}
}

func (m *cedarMeasure) uid(u uidT, path bool) {
	m.str(cedar.String(u.Type), false, plainText)
	m.str(u.ID, path, kindOf(path, ""))
}

func (m *cedarMeasure) record(r cedar.Record, redact bool) {
	m.used += containerCost
	for k, v := range r.All() {
		if m.failed {
			return
		}
		m.str(k, redact, plainText)
		m.value(v, redact, kindOf(k == "path", k))
		if reservedKey(k) && !m.count {
			m.redacts = true // left out of the bounded copy
		}
	}
}

func (m *cedarMeasure) value(v cedar.Value, redact bool, k textKind) {
	switch x := v.(type) {
	case cedar.String:
		m.str(x, redact, k)
	case cedar.Record:
		m.record(x, redact)
	case cedar.Set:
		m.used += containerCost
		for e := range x.All() {
			if m.failed {
				return
			}
			m.value(e, redact, k)
		}
	case cedar.EntityUID:
		m.uid(uidT(x), redact)
	default:
		m.used += valueCost
	}
}
