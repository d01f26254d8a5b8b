package decisionlog

import (
	"encoding/json"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"unsafe"

	"github.com/cedar-policy/cedar-go"

	"github.com/wardenauthz/warden/policy"
)

// boundCedarOld is boundCedar as it was before its strings were copied
// into one allocation: a string cloned at a time (TestBoundCedarAsBefore
// holds the two equal).
func boundCedarOld(l *policy.Logged, maxField, budget int) (out *policy.Logged, size int) {
	b := cedarBounderOld{maxField: maxField, budget: budget}
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
			if reservedKey(k) { // since session 12: left out
				continue
			}
			ctx[ks] = vs
		}
	}
	c.Context = cedar.NewRecord(ctx)
	if b.over() {
		return nil, 0
	}
	return &c, b.used
}

type cedarBounderOld struct {
	maxField, budget, used int
	failed                 bool
}

func (b *cedarBounderOld) over() bool { return b.failed || b.used > b.budget }

// str bounds and copies one string, redacting it when caller-controlled.
func (b *cedarBounderOld) str(s cedar.String, redact bool, k textKind) cedar.String {
	if len(s) > b.maxField {
		b.failed = true
		return ""
	}
	b.used += len(s) + valueCost
	// since session 12: every string (parameters), hosts, UTF-8 (cedarText)
	if r, changed := cedarText(string(s), redact, k); changed {
		return cedar.String(r)
	}
	return cedar.String(strings.Clone(string(s)))
}

func (b *cedarBounderOld) uid(u uidT, path bool) uidT {
	e := cedar.EntityUID(u)
	return uidT(cedar.NewEntityUID(cedar.EntityType(b.str(cedar.String(e.Type), false, plainText)), b.str(e.ID, path, kindOf(path, ""))))
}

func (b *cedarBounderOld) uids(us []uidT) []uidT {
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

func (b *cedarBounderOld) record(r cedar.Record, redact bool) cedar.Record {
	b.used += containerCost
	m := make(cedar.RecordMap, r.Len())
	for k, v := range r.All() {
		if b.over() {
			break
		}
		ks, vs := b.str(k, redact, plainText), b.value(v, redact, kindOf(k == "path", k))
		if reservedKey(k) { // since session 12: left out
			continue
		}
		m[ks] = vs
	}
	return cedar.NewRecord(m)
}

func (b *cedarBounderOld) value(v cedar.Value, redact bool, k textKind) cedar.Value {
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

// TestBoundCedarAsBefore: boundCedar, its strings copied into one
// allocation, answers as boundCedarOld (the same section, size and
// verdict), and no string of its copy lies in the memory of the section it
// was given (strings drawn into one allocation, as a request's are): a
// Ring keeping the copy keeps none of the request.
func TestBoundCedarAsBefore(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(5, 6))
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbi1hbmQtbW9yZQ"
	atoms := []string{"", "a", "/v1/orders/42", "api.example.com", jwt, "/x/" + jwt, "\x01<>&", "é\xff", strings.Repeat("ab", 40), strings.Repeat("z", 700), "__extn"}
	draw := func() string {
		var s strings.Builder
		for range rng.IntN(4) {
			s.WriteString(atoms[rng.IntN(len(atoms))])
		}
		return s.String()
	}
	for i := range 2000 {
		a, b, c := draw(), draw(), draw()
		backing := a + b + c + "#" // one allocation, like the request's
		a, b, c = backing[:len(a)], backing[len(a):len(a)+len(b)], backing[len(a)+len(b):len(a)+len(b)+len(c)]
		var l *policy.Logged
		if i%2 == 0 {
			l = cedarLogged(a, b, rng.IntN(40), rng.Int64(), uint8(rng.IntN(16)))
		} else {
			l = diffRecord(a, b, c, 1, true, rng.IntN(2) == 0).Cedar
		}
		for _, lim := range diffLimits {
			got, gotSize, _ := boundCedar(l, lim.MaxFieldBytes, lim.MaxRecordBytes)
			want, wantSize := boundCedarOld(l, lim.MaxFieldBytes, lim.MaxRecordBytes)
			if (got == nil) != (want == nil) || gotSize != wantSize {
				t.Fatalf("boundCedar: %v, %d; before: %v, %d", got != nil, gotSize, want != nil, wantSize)
			}
			if got == nil {
				continue
			}
			gj, gerr := json.Marshal(got)
			wj, werr := json.Marshal(want)
			if string(gj) != string(wj) || (gerr == nil) != (werr == nil) {
				t.Fatalf("boundCedar:\n%s %v\nbefore:\n%s %v", gj, gerr, wj, werr)
			}
			lo := uintptr(unsafe.Pointer(unsafe.StringData(backing)))
			hi := lo + uintptr(len(backing))
			eachCedarString(got, func(s string) {
				if p := uintptr(unsafe.Pointer(unsafe.StringData(s))); s != "" && lo <= p && p < hi {
					t.Fatalf("the bounded copy's %q is in the given section's memory", s)
				}
			})
		}
	}
}

// eachCedarString calls f with every string of l from the request (not
// Decision and Source: the policy's constants).
func eachCedarString(l *policy.Logged, f func(string)) {
	uid := func(u cedar.EntityUID) { f(string(u.Type)); f(string(u.ID)) }
	var value func(v cedar.Value)
	value = func(v cedar.Value) {
		switch x := v.(type) {
		case cedar.String:
			f(string(x))
		case cedar.Record:
			for k, e := range x.All() {
				f(string(k))
				value(e)
			}
		case cedar.Set:
			for e := range x.All() {
				value(e)
			}
		case cedar.EntityUID:
			uid(x)
		}
	}
	for _, u := range append(append([]uidT{l.Principal, l.Action, l.Resource}, l.Parents...), l.ResourceParents...) {
		uid(cedar.EntityUID(u))
	}
	for _, r := range []*cedar.Record{l.Attrs, l.ResourceAttrs, &l.Context} {
		if r != nil {
			value(*r)
		}
	}
}
