package decisionlog

import (
	"encoding/json"
	mrand "math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go"

	"github.com/wardenauthz/warden/policy"
)

// diffRecord is a record whose caller-influenced strings are a, b and c
// (each may be long, hold a credential, escape sixfold), with lists of n
// and, when cedarSection, a Cedar section of them.
func diffRecord(a, b, c string, n int, cedarSection, authzen bool) *Record {
	list := func() []string {
		if n < 0 {
			return nil
		}
		l := make([]string, n)
		for i := range l {
			l[i] = []string{a, b, c}[i%3]
		}
		return l
	}
	r := &Record{
		Time: time.Unix(1_780_000_000, 123).UTC(), DecisionID: "d", Decision: "allow", Status: 200, Reason: ReasonPolicyAllow,
		Policies: list(), Errors: list(), Principal: a, Action: b, Resource: c,
		Request:   RecordRequest{Method: "GET", Host: b, Path: a, SourceIP: "198.51.100.23", RequestID: c},
		Token:     &RecordToken{Iss: b, Jti: c},
		RateLimit: &RecordRateLimit{Rule: a, Remaining: 3},
		Workload:  c, Detail: b, Caller: a, Transport: "grpc", LatencyUS: 5,
	}
	if cedarSection {
		s := func(v string) cedar.Value { return cedar.String(v) }
		r.Cedar = &policy.Logged{
			Decision: "allow", Principal: uidOf("User", a), Parents: []uidT{uidOf("Role", b)},
			Action: uidOf("Action", "GET "+b), Resource: uidOf("Order", c),
			Context: cedar.NewRecord(cedar.RecordMap{
				"request": cedar.NewRecord(cedar.RecordMap{
					"path": s(a), "headers": cedar.NewRecord(cedar.RecordMap{"accept": s(b), cedar.String(c): s(a)}),
					"query": cedar.NewRecord(cedar.RecordMap{"q": cedar.NewSet(s(b), s(c)), "n": cedar.NewSet(cedar.Long(len(a)))}),
				}),
				"path_params":   cedar.NewRecord(cedar.RecordMap{"id": s(c)}),
				"extensions":    cedar.NewRecord(cedar.RecordMap{"note": s(b)}),
				"token":         cedar.NewRecord(cedar.RecordMap{"sub": s(a), "aud": cedar.NewSet(s(c)), "exp": cedar.Long(7)}),
				"ref":           cedar.NewEntityUID("Tenant", cedar.String(b)),
				cedar.String(b): s(c),
			}),
		}
		if authzen {
			r.Cedar.Source = policy.SourceAuthZEN
			attrs := cedar.NewRecord(cedar.RecordMap{"dept": s(a), cedar.String(c): cedar.True})
			r.Cedar.Attrs, r.Cedar.ResourceAttrs = &attrs, &attrs
			r.Cedar.ResourceParents = []uidT{uidOf("Folder", c)}
		}
	}
	return r
}

// sameAsBounded: the line encode writes for r is the line bounded (which
// copies and bounds the whole record) writes, under limits lim; and encode
// leaves r as it was.
func sameAsBounded(t *testing.T, lim RecordLimits, r *Record) {
	t.Helper()
	l := &DecisionLog{lim: lim}
	before := *r
	if r.Token != nil {
		tok := *r.Token
		before.Token = &tok
	}
	if r.RateLimit != nil {
		rl := *r.RateLimit
		before.RateLimit = &rl
	}
	before.Policies, before.Errors = slices.Clone(r.Policies), slices.Clone(r.Errors)
	got := string(l.encode(nil, r))
	if !reflect.DeepEqual(&before, r) {
		t.Fatalf("encode wrote the record it was given:\n%+v\n%+v", before, *r)
	}
	_, want := l.bounded(nil, r)
	if got != string(want) {
		t.Fatalf("encode:\n%s\nbounded:\n%s", got, want)
	}
	if !json.Valid([]byte(got)) {
		t.Fatalf("not JSON: %s", got)
	}
}

var diffLimits = []RecordLimits{
	DefaultRecordLimits,
	{MaxFieldBytes: 64, MaxRecordBytes: 4096},
	{MaxFieldBytes: 16, MaxRecordBytes: 1500},
}

// FuzzEncodeBounded: encode (no copy unless something is cut or redacted)
// writes the lines bounded writes, byte for byte, and never writes the
// record it is given.
func FuzzEncodeBounded(f *testing.F) {
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbi1hbmQtbW9yZQ"
	f.Add("/v1/orders/42", "api.example.com", "6f1c2a8e-3b7d-4f0e-9a52-2d1f8c4b7e90", 1, uint8(0), true, false)
	f.Add("/orders/"+jwt, "t="+jwt, jwt, 3, uint8(1), true, true)
	f.Add(strings.Repeat("\x01<", 300), "é\xff\u2028", "__extn", 70, uint8(2), true, false)
	f.Add("", "", "", -1, uint8(0), false, false)
	// credential-named parameters and userinfo in any string (session 12)
	f.Add("/api/healthz?access_token=01234567-89ab-4cde-8f01-23456789abcd", "user:pw@orders", "https://app/cb?state=x&c%6Fde=Splx", 2, uint8(1), true, false)
	f.Add("/login?next=%2Fcb%3Fcode%3DS%26x%3D1", "https://svc:"+strings.Repeat("p", 80)+"@api/v1", "\xff?sig=\xfe", 1, uint8(2), true, true)
	f.Fuzz(func(t *testing.T, a, b, c string, n int, lim uint8, cedarSection, authzen bool) {
		if len(a)+len(b)+len(c) > 4<<10 {
			return
		}
		n = n%100 - 1
		sameAsBounded(t, diffLimits[int(lim)%len(diffLimits)], diffRecord(a, b, c, n, cedarSection, authzen))
	})
}

// TestEncodeBoundedRandom: the differential test on drawn records, every
// run: short and long strings, credentials, escapes, lists over 64, Cedar
// sections over the limits.
func TestEncodeBoundedRandom(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(3, 4))
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbi1hbmQtbW9yZQ"
	atoms := []string{"", "a", "/v1/orders/42", "api.example.com", jwt, "/x/" + jwt, "5d41402abc4b2a76b9719d911017c592",
		"\x01<>&\"\\", "é\xff", "\u2028", "%2Fabcdefg", strings.Repeat("ab", 40), strings.Repeat("\x01", 700), "__entity",
		"?access_token=", "&code=", "%3Fsig%3D", "user:pw@", "https://", "@orders", "/p;jsessionid=", "%40", "x-forwarded-host"}
	draw := func() string {
		var s strings.Builder
		for range rng.IntN(4) {
			s.WriteString(atoms[rng.IntN(len(atoms))])
		}
		return s.String()
	}
	for range 3000 {
		r := diffRecord(draw(), draw(), draw(), rng.IntN(80)-1, rng.IntN(3) > 0, rng.IntN(4) == 0)
		sameAsBounded(t, diffLimits[rng.IntN(len(diffLimits))], r)
	}
}
