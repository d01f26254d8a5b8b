package identity

import (
	"strings"
	"testing"
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

func FuzzBearer(f *testing.F) {
	for _, s := range []string{"Bearer x", "bearer  y", "Basic z", "Bearer", "Bearerx", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, present := bearer(h)
		if !present && tok != "" {
			t.Fatal("token without a bearer header")
		}
		if present && len(tok) > len(h) {
			t.Fatal("token longer than header")
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
