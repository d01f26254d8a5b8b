package decisionlog

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/cedar-policy/cedar-go"

	"github.com/wardenauthz/warden/policy"
)

// leakyRecord is a replayable record whose strings carry secrets the way
// an outside attacker found them kept (session 12, F4): query strings
// inside header values of any name (Envoy's x-envoy-original-path after a
// rewrite, an OAuth referer, a forwarded URI), escaped names and escaped
// nested queries, URL userinfo, a Host with userinfo, a path's matrix
// parameter, and the same in the request id, an extension and a token
// claim (a string not redacted by shape).
func leakyRecord(m func(string) string) *Record {
	s := func(v string) cedar.Value { return cedar.String(v) }
	return &Record{DecisionID: "d", Decision: "deny", Status: 400, Reason: ReasonPolicyDeny,
		Request: RecordRequest{Method: "GET", Host: "user:" + m("host") + "@orders", Path: "/orders/1;jsessionid=" + m("path"), RequestID: "r?access_token=" + m("rid")},
		Detail:  "see https://app.example/cb?code=" + m("detail"),
		Cedar: &policy.Logged{Decision: "allow", Principal: uidOf("User", "alice"), Action: uidOf("Action", "GET /orders/{id}"), Resource: uidOf("Order", "1"),
			Context: cedar.NewRecord(cedar.RecordMap{
				"request": cedar.NewRecord(cedar.RecordMap{
					"host": s("u:" + m("chost") + "@orders"),
					"path": s("/orders/1"),
					"headers": cedar.NewRecord(cedar.RecordMap{
						"x-envoy-original-path": s("/api/healthz?access_token=" + m("orig")),
						"referer":               s("https://app.example/cb?state=xyz&code=" + m("referer")),
						"x-original-url":        s("https://app.example/x?acc%65ss_tok%65n=" + m("escname")),
						"x-forwarded-uri":       s("/login?next=%2Fcb%3Fstate%3D1%26code%3D" + m("nested") + "%26x%3D2"),
						"location":              s("https://svc:" + m("userinfo") + "@api.example/v1"),
						"x-forwarded-host":      s("admin:" + m("fhost") + "@orders"),
						"x-any":                 s("a=1&Password=" + m("any")),
						"accept":                s("text/plain"),
					}),
					"query": cedar.NewRecord(cedar.RecordMap{"redirect_uri": cedar.NewSet(s("https://app.example/cb?code=" + m("qvalue")))}),
				}),
				"extensions": cedar.NewRecord(cedar.RecordMap{"origin": s("https://x.example/?sig=" + m("ext"))}),
				"token":      cedar.NewRecord(cedar.RecordMap{"return_to": s("https://x.example/?id_token_hint=" + m("claim"))}),
			}),
		},
	}
}

// secretMark is the secret of one place: none of them may reach a record.
func secretMark(place string) string { return "Q7mark" + place + "x" }

var leakPlaces = []string{"host", "path", "rid", "detail", "chost", "orig", "referer", "escname", "nested", "userinfo", "fhost", "any", "qvalue", "ext", "claim"}

// TestRecordRedactsParamsEverywhere: no secret of leakyRecord reaches the
// line a sink writes, with a Ring (bounded) or without (encode), nor the
// Ring's copy (the admin API's view, its Cedar section encoded by
// encoding/json); the Cedar section is kept, and what carries no secret is
// as it was. On the old code every one of them but the request's own
// redirect_uri value... stayed verbatim.
func TestRecordRedactsParamsEverywhere(t *testing.T) {
	for _, ring := range []bool{false, true} {
		sink := &lineSink{}
		o := Options{Size: 10, Sinks: []LineSink{sink}}
		if ring {
			o.Keep = NewRing(10, 1<<20)
		}
		l := New(o)
		l.Record(leakyRecord(secretMark))
		if err := l.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		texts := []string{sink.lines[0]}
		if ring {
			for _, r := range o.Keep.recs {
				if r == nil {
					continue
				}
				b, err := json.Marshal(r)
				if err != nil {
					t.Fatal(err)
				}
				texts = append(texts, string(b))
			}
		}
		for _, text := range texts {
			for _, p := range leakPlaces {
				if strings.Contains(text, secretMark(p)) {
					t.Errorf("ring %v: the %s secret reached the record: %s", ring, p, text)
				}
			}
			for _, keep := range []string{`"cedar":{`, `"accept":"text/plain"`, `"host":"[REDACTED]@orders"`, `/api/healthz?access_token=[REDACTED]`,
				`state=xyz\u0026code=[REDACTED]`, `https://[REDACTED]@api.example/v1`, `"path":"/orders/1;jsessionid=[REDACTED]"`} {
				if !strings.Contains(text, keep) {
					t.Errorf("ring %v: %s not in %s", ring, keep, text)
				}
			}
			if strings.Contains(text, `"truncated"`) {
				t.Errorf("ring %v: truncated: %s", ring, text)
			}
		}
	}
}

// TestCedarKeptWithInvalidUTF8 (session 12, F5): a header value that is
// not UTF-8 (Envoy's header_map raw_value) no longer makes the record lose
// its Cedar section silently: the section is kept, each invalid byte
// replaced by U+FFFD (as the rest of the record's JSON has it), so the
// request stays replayable; a member Cedar's JSON cannot hold (a header
// named __entity) is left out and the record says truncated. With a Ring
// and without; the Ring's copy encodes with encoding/json too (the admin
// API's cedar_json).
func TestCedarKeptWithInvalidUTF8(t *testing.T) {
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJSQVdKV1RTVUIifQ.c2lnbmF0dXJlc2lnbmF0dXJlc2ln"
	for _, c := range []struct {
		name, value string
		truncated   bool
	}{
		{"x-v1", "\xff" + jwt + "\xfe", false},
		{"x-v3", "\xc3abc\xffdef", false},
		{"x-v4", "\"},\"decision\":\"allow\n{\"x\":\"\xff", false},
		{"x-v5", "\xe2\x80tail", false},
		{"__entity", "v", true},
		{"__extn", "v", true},
	} {
		for _, ring := range []bool{false, true} {
			sink := &lineSink{}
			o := Options{Size: 10, Sinks: []LineSink{sink}}
			if ring {
				o.Keep = NewRing(10, 1<<20)
			}
			l := New(o)
			l.Record(&Record{DecisionID: "d", Decision: "allow", Status: 200, Reason: ReasonPolicyAllow, Policies: []string{"public-health"},
				Cedar: &policy.Logged{Decision: "allow", Principal: uidOf("User", "alice"), Action: uidOf("Action", "GET /healthz"), Resource: uidOf("Service", "orders"),
					Context: cedar.NewRecord(cedar.RecordMap{"request": cedar.NewRecord(cedar.RecordMap{
						"headers": cedar.NewRecord(cedar.RecordMap{cedar.String(c.name): cedar.String(c.value), "accept": cedar.String("text/plain")}),
					})})}})
			if err := l.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			var got Record
			if err := json.Unmarshal([]byte(sink.lines[0]), &got); err != nil {
				t.Fatalf("%s: %v: %s", c.name, err, sink.lines[0])
			}
			if got.Cedar == nil || got.Truncated != c.truncated {
				t.Fatalf("%s, ring %v: Cedar section %v, truncated %v; want kept, truncated %v: %s", c.name, ring, got.Cedar != nil, got.Truncated, c.truncated, sink.lines[0])
			}
			hs, _ := got.Cedar.Context.Get("request")
			h, _ := hs.(cedar.Record).Get("headers")
			v, ok := h.(cedar.Record).Get(cedar.String(c.name))
			if c.truncated {
				if ok {
					t.Errorf("%s kept", c.name)
				}
			} else if want := validUTF8(c.value); !ok || v != cedar.String(want) && !strings.HasPrefix(string(v.(cedar.String)), "\uFFFD[REDACTED]") {
				t.Errorf("%s = %q; want %q (a byte at a time)", c.name, v, want)
			}
			if a, _ := h.(cedar.Record).Get("accept"); a != cedar.String("text/plain") {
				t.Errorf("accept = %v", a)
			}
			if ring {
				for _, r := range o.Keep.recs {
					if r == nil {
						continue
					}
					if _, err := json.Marshal(r.Cedar); err != nil || r.Truncated != c.truncated {
						t.Errorf("%s: the Ring's copy: %v, truncated %v", c.name, err, r.Truncated)
					}
				}
			}
		}
	}
}

// TestUnencodableCedarSaysTruncated: should a Cedar section still fail to
// encode (appendJSON is given one boundCedar did not make), the record is
// written without it and says truncated, never silently.
func TestUnencodableCedarSaysTruncated(t *testing.T) {
	r := &Record{DecisionID: "d", Cedar: &policy.Logged{Decision: "allow", Principal: uidOf("User", "a"), Action: uidOf("Action", "GET"), Resource: uidOf("R", "x"),
		Context: cedar.NewRecord(cedar.RecordMap{"__extn": cedar.String("\xff")})}}
	b, _ := appendJSON(nil, r)
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil || got["truncated"] != true || got["cedar"] != nil {
		t.Fatalf("%v: %s", err, b)
	}
}

// FuzzRecordParamsRedacted: a secret under a credential-named parameter
// (names of the list in any case, escaped, Kelvin sign for k), in a query
// built around fuzzed parameters, nested and escaped up to twice in
// another parameter, or as URL or Host userinfo, put in any string a
// record holds (a header of any name, the Host, the path, the request id,
// an extension, a token claim, the detail): the secret, escaped or not,
// never appears in the line encode or bounded writes.
func FuzzRecordParamsRedacted(f *testing.F) {
	f.Add("state=xyz", "x=1", "SplxlOBeZQQYbYS6WxSbIA", "referer", uint8(0), uint8(0), uint8(0))
	f.Add("", "", "01234567-89ab-4cde-8f01-23456789abcd", "x-envoy-original-path", uint8(1), uint8(1), uint8(3))
	f.Add("a=%26&b", "#frag", "abcdefgh", "x-forwarded-uri", uint8(2), uint8(2), uint8(7))
	f.Add("q=a b", "c=\"d\"", "s3cr3t.value~x", "location", uint8(3), uint8(5), uint8(9))
	f.Fuzz(func(t *testing.T, pre, post, secretIn, header string, nameSel, enc, where uint8) {
		var sec strings.Builder
		for i := 0; i < len(secretIn) && sec.Len() < 40; i++ {
			if c := secretIn[i]; alnumByte(c) || c == '-' || c == '.' || c == '_' || c == '~' {
				sec.WriteByte(c)
			}
		}
		secret := "Zk" + sec.String()
		if len(secret) < 8 || len(pre)+len(post)+len(header) > 600 {
			return
		}
		if strings.Contains(decodeAll(pre+post+header), secret) {
			return
		}
		names := []string{"access_token", "code", "Code", "SIG", "dpop", "api_key", "apikey", "client_secret", "Password", "PASSWD",
			"session_id", "id_token_hint", "X-Amz-Signature", "jwt", "SAMLResponse", "user[password]", "to\u212aen", "auth"}
		name := names[int(nameSel)%len(names)]
		switch enc % 3 { // the name escaped: some of its bytes, once or twice
		case 1:
			name = escapeSome(name, 1)
		case 2:
			name = escapeSome(name, 2)
		}
		q := pre + "&" + name + "=" + secret + "&" + post
		u := []string{"https://app.example/cb?", "/api/healthz?", "?", "/p;", "https://h/#"}[int(enc/3)%5] + q
		switch (enc / 15) % 4 { // nested in another parameter, escaped once or twice
		case 1:
			u = "/login?next=" + url.QueryEscape(u) + "&z=1"
		case 2:
			u = "/login?next=" + url.QueryEscape(url.QueryEscape(u))
		case 3: // userinfo instead
			u = "https://svc:" + secret + "@api.example/v1?" + pre
		}
		host := "orders"
		if (enc/60)%2 == 1 {
			host = "user:" + secret + "@orders"
		}
		hn := strings.ToLower(header)
		if hn == "" || strings.ContainsAny(hn, "\x00") {
			hn = "x-h"
		}
		r := &Record{DecisionID: "d", Decision: "allow", Status: 200, Reason: ReasonPolicyAllow, Request: RecordRequest{Method: "GET", Host: host, Path: "/orders/1"}}
		ctxReq := cedar.RecordMap{"host": cedar.String(host), "headers": cedar.NewRecord(cedar.RecordMap{cedar.String(hn): cedar.String(u)})}
		ctx := cedar.RecordMap{"request": nil}
		switch where % 6 {
		case 1:
			r.Request.Path = u
		case 2:
			r.Request.RequestID = u
		case 3:
			ctx["extensions"] = cedar.NewRecord(cedar.RecordMap{"e": cedar.String(u)})
		case 4:
			ctx["token"] = cedar.NewRecord(cedar.RecordMap{"claim": cedar.String(u)})
		case 5:
			r.Detail = u
		}
		ctx["request"] = cedar.NewRecord(ctxReq)
		r.Cedar = &policy.Logged{Decision: "allow", Principal: uidOf("User", "alice"), Action: uidOf("Action", "GET"), Resource: uidOf("Order", "1"), Context: cedar.NewRecord(ctx)}
		for _, lim := range diffLimits {
			l := &DecisionLog{lim: lim}
			line := string(l.encode(nil, r))
			_, b := l.bounded(nil, r)
			for _, got := range []string{line, string(b)} {
				if strings.Contains(decodeAll(got), secret) {
					t.Fatalf("secret %q of %q reached the record: %s", secret, u, got)
				}
			}
			if line != string(b) {
				t.Fatalf("encode:\n%s\nbounded:\n%s", line, b)
			}
		}
	})
}

func alnumByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// escapeSome percent-escapes every second byte of s, times times.
func escapeSome(s string, times int) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if i%2 == 1 {
			e := "%" + strings.ToUpper(hexByte(s[i]))
			for range times - 1 {
				e = "%25" + e[1:]
			}
			b.WriteString(e)
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func hexByte(c byte) string { return string([]byte{hexDigits[c>>4], hexDigits[c&0xf]}) }

// decodeAll is s with its escapes decoded until none is left (JSON's
// \u0026 and friends as well).
func decodeAll(s string) string {
	s = strings.NewReplacer(`\u0026`, "&", `\u003c`, "<", `\u003e`, ">").Replace(s)
	for range 8 {
		d, err := url.PathUnescape(s)
		if err != nil || d == s {
			break
		}
		s = d
	}
	return s
}
