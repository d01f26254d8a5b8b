package decisionlog

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/wardenauthz/warden/internal/credential"
	"github.com/wardenauthz/warden/policy"
)

// RecordLimits bound each decision record and the buffers that hold them,
// in bytes as well as in count (decision_log in the config).
type RecordLimits struct {
	// MaxFieldBytes bounds each string of a record a caller can influence
	// (path, host, request id, principal, resource, detail, policies,
	// errors, and every string of the Cedar section); longer ones are cut
	// at a UTF-8 boundary and the record is marked truncated.
	MaxFieldBytes int
	// MaxRecordBytes bounds one encoded record (a JSON line, a Redis stream
	// entry). A record over it loses its Cedar section first (it is then
	// not replayable), then its strings are cut shorter, and it is marked
	// truncated.
	MaxRecordBytes int
	// BufferBytes bounds the records waiting in the asynchronous buffer (as
	// well as its count): a record that would pass it is dropped and
	// counted.
	BufferBytes int
}

// DefaultRecordLimits are the config's defaults.
var DefaultRecordLimits = RecordLimits{MaxFieldBytes: 1024, MaxRecordBytes: 16 << 10, BufferBytes: 16 << 20}

// recordOverhead is what a record costs in memory beyond its strings.
const recordOverhead = 512

// clip cuts r's caller-influenced strings to max bytes and caps its lists.
// On the request path it copies them (so that a queued record does not
// keep the request's memory alive: a path cut from a long request, or
// one aliasing the request's buffer, would hold all of it), all into one
// string; off it, it redacts the credential-looking words in them. It
// returns the bytes r's strings then hold. It never writes the lists' own
// arrays (Evaluate's caller may read them): a list is copied before an
// element of it changes.
func (r *Record) clip(max int, copies, redact bool) int {
	n := 0
	bound := func(v string, path, host bool) string {
		if len(v) > max {
			v = cutField(v, max, host)
			r.Truncated = true
		}
		if red, hit := redactIf(redact, v, path); hit {
			v = red
		}
		n += len(v)
		return v
	}
	r.eachField(func(p *string, path bool) { *p = bound(*p, path, p == &r.Request.Host) })
	if redact { // a host's userinfo (user:password@orders)
		if h, hit := credential.RedactHost(r.Request.Host); hit {
			n += len(h) - len(r.Request.Host)
			r.Request.Host = h
		}
	}
	list := func(p *[]string) {
		l := *p
		if len(l) > maxListed {
			l = l[:maxListed:maxListed]
			r.Truncated = true
		}
		if l != nil && len(l) == 0 {
			l = []string{}
		}
		own := copies && len(l) > 0 // the copy below rewrites every element
		if own {
			l = slices.Clone(l)
		}
		for i, s := range l {
			if v := bound(s, false, false); v != s {
				if !own {
					l, own = slices.Clone(l), true
				}
				l[i] = v
			}
		}
		*p = l
	}
	list(&r.Policies)
	list(&r.Errors)
	if copies && n > 0 {
		var b strings.Builder
		b.Grow(n)
		r.eachString(func(p *string) { b.WriteString(*p) })
		all := b.String()
		r.eachString(func(p *string) {
			if k := len(*p); k > 0 {
				*p, all = all[:k], all[k:]
			}
		})
	}
	return n
}

// eachString calls f with each of r's caller-influenced strings.
func (r *Record) eachString(f func(p *string)) {
	r.eachField(func(p *string, _ bool) { f(p) })
	for i := range r.Policies {
		f(&r.Policies[i])
	}
	for i := range r.Errors {
		f(&r.Errors[i])
	}
}

// eachField calls f with each of r's caller-influenced strings but for its
// lists, and whether it reads as a path (credential.Redact).
func (r *Record) eachField(f func(p *string, path bool)) {
	q := &r.Request
	f(&q.Method, false)
	f(&q.Host, false)
	f(&q.Path, true)
	f(&q.SourceIP, false)
	f(&q.RequestID, false)
	f(&r.Principal, false)
	f(&r.Action, true)
	f(&r.Resource, true)
	f(&r.Workload, false)
	f(&r.Detail, false)
	f(&r.Caller, false)
	if t := r.Token; t != nil {
		f(&t.Iss, false)
		f(&t.Jti, false)
	}
	if rl := r.RateLimit; rl != nil {
		f(&rl.Rule, false)
	}
}

// maxListed bounds the policies and errors a record names.
const maxListed = 64

// cutField is cut(s, max), with the userinfo of an authority the cut
// leaves open redacted (credential.RedactOpenUserinfo) when what is cut
// off holds '@' or an escape: "https://svc:secret" of
// "https://svc:secret@api/..." (or a host "user:secret" of
// "user:secret@orders") would otherwise keep a password whose '@' is gone.
func cutField(s string, max int, host bool) string {
	p := cut(s, max)
	if tail := s[len(p):]; strings.IndexByte(tail, '@') < 0 && strings.IndexByte(tail, '%') < 0 {
		return p
	}
	p, _ = credential.RedactOpenUserinfo(p, host)
	return p
}

// cut is s's first max bytes or fewer, ending at a rune boundary.
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := max
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// boundCedar is l within the limits, its strings copied and its
// caller-controlled ones (the request, path parameters, extensions, the
// resource) with credential-looking words redacted; nil when it does not
// fit (a string over maxField, or more than budget bytes in all, each value
// costing its bytes and its estimated overhead in memory), and then the
// record is not replayable. size is its estimated size in memory. lossy
// says a member was left out: one named __entity or __extn, which Cedar's
// JSON cannot hold (the record is then marked truncated, and keeps the
// rest of its section).
//
// Its strings are copied into one allocation, sized by a first pass that
// counts them (and answers nil at once when l does not fit).
func boundCedar(l *policy.Logged, maxField, budget int) (out *policy.Logged, size int, lossy bool) {
	m := cedarMeasure{maxField: maxField, count: true}
	m.walk(l)
	if m.failed || m.used > budget {
		return nil, 0, false
	}
	b := cedarBounder{maxField: maxField, budget: budget}
	b.copies.Grow(m.bytes)
	c := *l
	c.Principal = b.uid(l.Principal, false)
	c.Action = b.uid(l.Action, true)
	c.Resource = b.uid(l.Resource, true)
	c.Parents = b.uids(l.Parents)
	c.ResourceParents = b.uids(l.ResourceParents)
	// An AuthZEN caller states the attributes and the whole context.
	stated := l.Source == policy.SourceAuthZEN
	if l.Attrs != nil {
		a := b.record(*l.Attrs, stated)
		c.Attrs = &a
	}
	if l.ResourceAttrs != nil {
		a := b.record(*l.ResourceAttrs, true)
		c.ResourceAttrs = &a
	}
	ctx := make(cedar.RecordMap, l.Context.Len())
	for k, v := range l.Context.All() {
		if b.over() {
			break
		}
		switch k {
		case "request", "path_params", "extensions":
			ctx[b.str(k, false, plainText)] = b.value(v, true, kindOf(k == "path_params", k))
		default:
			ks, vs := b.str(k, stated, plainText), b.value(v, stated, kindOf(false, k))
			if reservedKey(k) { // an AuthZEN caller's context
				b.lossy = true
				continue
			}
			ctx[ks] = vs
		}
	}
	c.Context = cedar.NewRecord(ctx)
	if b.over() {
		return nil, 0, false
	}
	return &c, b.used, b.lossy
}

type uidT = types.ImplicitlyMarshaledEntityUID

type cedarBounder struct {
	maxField, budget, used int
	failed, lossy          bool
	// copies holds the copied strings, one after the other.
	copies strings.Builder
}

// keep is a copy of s in b.copies (a Builder never moves what it wrote:
// a String taken earlier stays valid when it grows).
func (b *cedarBounder) keep(s string) string {
	if s == "" {
		return ""
	}
	b.copies.WriteString(s)
	all := b.copies.String()
	return all[len(all)-len(s):]
}

func (b *cedarBounder) over() bool { return b.failed || b.used > b.budget }

// str bounds and copies one string, as cedarText keeps it.
func (b *cedarBounder) str(s cedar.String, redact bool, k textKind) cedar.String {
	if len(s) > b.maxField {
		b.failed = true
		return ""
	}
	b.used += len(s) + valueCost
	if r, changed := cedarText(string(s), redact, k); changed {
		return cedar.String(r)
	}
	return cedar.String(b.keep(string(s)))
}

func (b *cedarBounder) uid(u uidT, path bool) uidT {
	e := cedar.EntityUID(u)
	return uidT(cedar.NewEntityUID(cedar.EntityType(b.str(cedar.String(e.Type), false, plainText)), b.str(e.ID, path, kindOf(path, ""))))
}

func (b *cedarBounder) uids(us []uidT) []uidT {
	if us == nil {
		return nil
	}
	out := make([]uidT, 0, len(us))
	for _, u := range us {
		if b.over() {
			break
		}
		out = append(out, b.uid(u, false))
	}
	return out
}

func (b *cedarBounder) record(r cedar.Record, redact bool) cedar.Record {
	b.used += containerCost
	m := make(cedar.RecordMap, r.Len())
	for k, v := range r.All() {
		if b.over() {
			break
		}
		ks, vs := b.str(k, redact, plainText), b.value(v, redact, kindOf(k == "path", k))
		if reservedKey(k) {
			b.lossy = true
			continue
		}
		m[ks] = vs
	}
	return cedar.NewRecord(m)
}

func (b *cedarBounder) value(v cedar.Value, redact bool, k textKind) cedar.Value {
	if b.over() {
		return cedar.String("")
	}
	switch x := v.(type) {
	case cedar.String:
		return b.str(x, redact, k)
	case cedar.Record:
		return b.record(x, redact)
	case cedar.Set:
		b.used += containerCost
		vs := make([]cedar.Value, 0, x.Len())
		for e := range x.All() {
			if b.over() {
				break
			}
			vs = append(vs, b.value(e, redact, k))
		}
		return cedar.NewSet(vs...)
	case cedar.EntityUID:
		return cedar.EntityUID(b.uid(uidT(x), redact))
	}
	b.used += valueCost
	return v
}

// valueCost and containerCost are what a Cedar value, and a record or set
// beyond its values, cost in memory (measured: about 185 bytes for a query
// parameter, its name and a set of one string). Counted against
// max_record_bytes, they keep a Cedar section of thousands of tiny values
// from holding many times its size.
const (
	valueCost     = 64
	containerCost = 192
)

// reservedKey: Cedar's JSON reads a record with such a member as an entity
// or extension value, and cedar-go refuses to write one.
func reservedKey(k cedar.String) bool { return k == "__entity" || k == "__extn" }

// textKind is how a string of a Cedar section reads: a URL path (a raw '/'
// separates credential-looking words), a host (userinfo before its last
// '@' is redacted: credential.RedactHost), or plain text.
type textKind uint8

const (
	plainText textKind = iota
	pathText
	hostText
)

// kindOf is the kind of a value under key k (path when the caller says
// so): a host when k names one (request.host, a Host-like header:
// host, x-forwarded-host, :authority).
func kindOf(path bool, k cedar.String) textKind {
	switch {
	case path:
		return pathText
	case k == ":authority" || strings.Contains(strings.ToLower(string(k)), "host"):
		return hostText
	}
	return plainText
}

// cedarText is s as a bounded Cedar section keeps it, and whether that
// differs from s: the values of credential-named parameters and URL
// userinfo redacted in every string (credential.RedactParams), and when
// redact (the caller-controlled strings) every credential-looking word too
// (credential.Redact); a host's userinfo redacted; then invalid UTF-8
// replaced, a byte at a time, by U+FFFD (as the rest of the record's JSON
// has it: cedar-go's JSON refuses it, and the section would be lost).
func cedarText(s string, redact bool, k textKind) (string, bool) {
	var changed, hit bool
	if redact {
		s, changed = credential.Redact(s, k == pathText)
	} else {
		s, changed = credential.RedactParams(s)
	}
	if k == hostText {
		s, hit = credential.RedactHost(s)
		changed = changed || hit
	}
	if !utf8.ValidString(s) { // after: an escaped name may hold raw bytes of a rune
		s, changed = validUTF8(s), true
	}
	return s, changed
}

// validUTF8 is s with each byte that is not part of valid UTF-8 replaced
// by U+FFFD, as encoding/json (and appendStr) writes it.
func validUTF8(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func redactIf(on bool, s string, path bool) (string, bool) {
	if !on {
		return s, false
	}
	return credential.Redact(s, path)
}
