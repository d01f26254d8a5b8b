package identity

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func FuzzPreparse(f *testing.F) {
	for _, s := range []string{
		"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln",
		"eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.",
		"a.b.c.d.e", `{"payload":"x"}`, "..", "",
		"eyJhbGciOiJSUzI1NiIsImFsZyI6Im5vbmUifQ.e30.c2ln",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := preparse(raw, 8192)
		if err != nil {
			return
		}
		// Whatever passes has an issuer, an allowed-looking alg, and no
		// forbidden header parameters.
		if p.iss == "" || p.header.Alg == "" || strings.EqualFold(p.header.Alg, "none") || strings.HasPrefix(strings.ToUpper(p.header.Alg), "HS") {
			t.Fatalf("accepted %q with header %+v", raw, p.header)
		}
		if strings.ContainsAny(raw, " \t\r\n{") {
			t.Fatalf("accepted %q", raw)
		}
	})
}

// The Authorization header grammar (RFC 9110 §11.4, RFC 6750 §2.1), as a
// model independent of bearer's scanner: a well-formed Bearer credential is
// the scheme in any case, 1*SP and a token68 (the field's optional
// whitespace around it), and an attempt at one is any comma-separated
// element starting, after any Unicode whitespace, with the scheme not
// followed by a token character.
var (
	grammarValid   = regexp.MustCompile(`^[ \t]*((?i:bearer|dpop)) +([A-Za-z0-9._~+/-]+=*)[ \t]*$`)
	grammarAttempt = regexp.MustCompile("(?:^|,)[\t\n\v\f\r \\x{85}\\p{Z}]*(?i:bearer|dpop)(?:$|[^!#$%&'*+.^_`|~0-9A-Za-z-])")
)

func FuzzBearer(f *testing.F) {
	for _, s := range []string{"Bearer x", "bearer  y", "Basic z", "Bearer", "Bearerx", "",
		"Bearer\tx", "BEARER \t x", "bearer\u00a0x", "\vBearer x", "Basic a,Bearer x", "Bearer a,Bearer b",
		"Bearer x=", "Bearer =", "bearer=x", "Bearer\x00x", "Bearer\xffx", " Bearer x \t", "bEaReR,", "Bearer-x",
		"DPoP x", "dpop  y", "DPoPx", "DPoP", "DPoP\tx", "Basic a,DPoP x", "DPoP a,Bearer b", "dpop=x", "DPoP-x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		scheme, tok, present := authorization(h)
		m := grammarValid.FindStringSubmatch(h)
		wantScheme, wantTok, wantPresent := "", "", grammarAttempt.MatchString(h)
		if m != nil {
			wantTok, wantPresent = m[2], true
			wantScheme = SchemeBearer
			if strings.EqualFold(m[1], SchemeDPoP) {
				wantScheme = SchemeDPoP
			}
		}
		if scheme != wantScheme || tok != wantTok || present != wantPresent {
			t.Fatalf("authorization(%q) = %q, %q, %v; the grammar says %q, %q, %v", h, scheme, tok, present, wantScheme, wantTok, wantPresent)
		}
	})
}

func FuzzXFCCURI(f *testing.F) {
	f.Add(`By=spiffe://a;URI=spiffe://cluster.local/ns/a/sa/b`)
	f.Add(`Subject="x,y;z";URI=a,URI=b`)
	f.Fuzz(func(t *testing.T, h string) {
		if u := XFCCURI(h); len(u) > len(h) {
			t.Fatal("URI longer than the header")
		}
	})
}

// FuzzCacheLifetime: whatever Cache-Control, Expires and Date a JWKS
// response carries, the background refresh waits between the minimum and
// the maximum interval.
func FuzzCacheLifetime(f *testing.F) {
	for _, s := range [][3]string{
		{"max-age=300", "", ""}, {"no-cache, max-age=600", "", ""}, {"max-age=99999999999999999999", "", ""},
		{"", "Thu, 01 Jan 2099 00:00:00 GMT", "Thu, 01 Jan 1970 00:00:00 GMT"}, {"", "0", ""},
		{`max-age="-1"`, "", ""}, {"max-age=0", "", ""}, {",,max-age=,", "", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	r := JWKSRefreshConfig{MinInterval: time.Minute, MaxInterval: 15 * time.Minute, UnknownKidInterval: 3 * time.Second}
	now := time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, cc, expires, date string) {
		h := http.Header{}
		for k, v := range map[string]string{"Cache-Control": cc, "Expires": expires, "Date": date} {
			if v != "" {
				h.Set(k, v)
			}
		}
		if d := cacheLifetime(h, now, r); d < r.MinInterval || d > r.MaxInterval {
			t.Fatalf("%q %q %q: %v", cc, expires, date, d)
		}
	})
}
