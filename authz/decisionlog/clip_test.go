package decisionlog

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/wardenauthz/warden/internal/credential"
)

// clipOld is clip as it was before it copied into one string (issue 18):
// FuzzClip holds the new one to it.
func (r *Record) clipOld(max int, copies, redact bool) int {
	n := 0
	s := func(p *string, path bool) {
		v := *p
		if len(v) > max {
			v = cutField(v, max, p == &r.Request.Host) // since session 12
			r.Truncated = true
		}
		if red, hit := redactIf(redact, v, path); hit {
			v = red
		} else if copies && v != "" {
			v = strings.Clone(v)
		}
		*p = v
		n += len(v)
	}
	q := &r.Request
	s(&q.Method, false)
	s(&q.Host, false)
	if redact { // the host's userinfo (since session 12)
		if h, hit := credential.RedactHost(q.Host); hit {
			n += len(h) - len(q.Host)
			q.Host = h
		}
	}
	s(&q.Path, true)
	s(&q.SourceIP, false)
	s(&q.RequestID, false)
	s(&r.Principal, false)
	s(&r.Action, true)
	s(&r.Resource, true)
	s(&r.Workload, false)
	s(&r.Detail, false)
	s(&r.Caller, false)
	if t := r.Token; t != nil {
		s(&t.Iss, false)
		s(&t.Jti, false)
	}
	if rl := r.RateLimit; rl != nil {
		s(&rl.Rule, false)
	}
	list := func(p *[]string) {
		l := *p
		if len(l) > maxListed {
			l = l[:maxListed:maxListed]
			r.Truncated = true
		}
		if l != nil {
			l = append([]string(nil), l...)
			if len(l) == 0 {
				l = []string{}
			}
		}
		for i := range l {
			s(&l[i], false)
		}
		*p = l
	}
	list(&r.Policies)
	list(&r.Errors)
	return n
}

// fuzzRecord is a record whose strings are all cut from buf.
func fuzzRecord(buf string, flags uint8, lens []byte) *Record {
	at := 0
	next := func() string {
		if len(lens) == 0 || len(buf) == 0 {
			return ""
		}
		k := int(lens[0]) * 8 % (len(buf) + 1)
		lens = lens[1:]
		s := buf[at%len(buf):]
		at += k
		return s[:min(k, len(s))]
	}
	r := &Record{Request: RecordRequest{Method: next(), Host: next(), Path: next(), SourceIP: next(), RequestID: next()},
		Principal: next(), Action: next(), Resource: next(), Workload: next(), Detail: next(), Caller: next(), DecisionID: next()}
	if flags&1 != 0 {
		r.Token = &RecordToken{Iss: next(), Jti: next()}
	}
	if flags&2 != 0 {
		r.RateLimit = &RecordRateLimit{Rule: next(), Remaining: 3}
	}
	if flags&4 != 0 {
		r.Policies = []string{}
		for range int(flags>>4) * 9 {
			r.Policies = append(r.Policies, next())
		}
	}
	if flags&8 != 0 {
		r.Errors = []string{next(), next()}
	}
	return r
}

// FuzzClip: clip leaves a record as clipOld did (same strings, lists,
// truncation and byte count) and, on the request path, none of its strings
// in the memory they came from, nor the caller's lists written to.
func FuzzClip(f *testing.F) {
	f.Add("GET example.com /orders/1 Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl x", uint8(0xff), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, 16, true, false)
	f.Add(strings.Repeat("é", 300), uint8(0x0f), []byte{255, 254, 3, 200, 0, 7}, 5, false, true)
	f.Add("", uint8(0), []byte{}, 1024, true, true)
	f.Fuzz(func(t *testing.T, buf string, flags uint8, lens []byte, max int, copies, redact bool) {
		if max < 1 || max > 4096 || copies && redact {
			return // the callers' combinations only
		}
		buf = strings.Clone(buf)
		want, got := fuzzRecord(buf, flags, lens), fuzzRecord(buf, flags, lens)
		policies := got.Policies
		before := slices.Clone(policies)
		wn, gn := want.clipOld(max, copies, redact), got.clip(max, copies, redact)
		if wn != gn || !reflect.DeepEqual(want, got) {
			t.Fatalf("clip(%d, %v, %v) = %d %+v, want %d %+v", max, copies, redact, gn, got, wn, want)
		}
		if !reflect.DeepEqual(policies, before) {
			t.Fatalf("clip wrote the caller's policies: %q, were %q", policies, before)
		}
		if !copies || len(buf) == 0 {
			return
		}
		lo := uintptr(unsafe.Pointer(unsafe.StringData(buf)))
		got.eachString(func(p *string) {
			if *p == "" {
				return
			}
			if a := uintptr(unsafe.Pointer(unsafe.StringData(*p))); lo <= a && a < lo+uintptr(len(buf)) {
				t.Fatalf("clip kept %q in the request's memory", *p)
			}
		})
	})
}

// BenchmarkRecordAndBound: a typical allow's record through Record's clip
// and the log goroutine's bounded copy and encoding.
func BenchmarkRecordAndBound(b *testing.B) {
	l := &DecisionLog{lim: DefaultRecordLimits}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		r := &Record{DecisionID: "0123456789abcdef0123456789abcdef", Decision: "allow", Status: 200, Reason: "policy_allow",
			Policies: []string{"staff-read"}, Principal: `User::"corp|alice"`, Action: `Action::"GET /orders/{id}"`,
			Resource: `Route::"orders"`, Request: RecordRequest{Method: "GET", Host: "api.example.com", Path: "/orders/42", SourceIP: "10.0.0.1", RequestID: "req-1"},
			Token: &RecordToken{Iss: "https://idp.example.com", Jti: "jti-1"}, RateLimit: &RecordRateLimit{Rule: "per-user", Remaining: 9}}
		r.clip(l.lim.MaxFieldBytes, true, false)
		_, buf = l.bounded(buf, r)
	}
}
