package identity

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzParseAPIKeys: the key file parser never panics; an accepted file
// holds only well-formed entries (a name that can be a principal, a
// 16-digit id, exactly one hash of the right size) and a dummy hash for
// unknown ids; a refusal names the file and a line.
func FuzzParseAPIKeys(f *testing.F) {
	sha := "sha256:" + strings.Repeat("ab", 32)
	for _, s := range []string{
		"keys: []\n",
		"keys:\n  - {name: a, id: 0123456789abcdef, hash: '" + sha + "'}\n",
		"keys:\n  - name: b\n    id: 0123456789abcdef\n    hash: '$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g'\n    parents: [p]\n    attributes: {tier: gold}\n",
		"keys:\n  - {name: 'a|b', id: 0123456789abcdef, hash: x}\n",
		"keys: 3\n", "", "- a\n", "keys:\n  - &a {name: a}\n  - *a\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		set, err := ParseAPIKeys("k.yaml", b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "k.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if set.dummy == nil || (set.dummy.sha256 == nil) == (set.dummy.argon == "") {
			t.Fatalf("no usable dummy hash: %+v", set.dummy)
		}
		for id, e := range set.byID {
			if len(id) != apiKeyIDLen || !isLowerHex(id) || apiKeyNameError(e.info.Name) != nil {
				t.Fatalf("accepted id %q name %q", id, e.info.Name)
			}
			if (e.sha256 == nil) == (e.argon == "") || (e.sha256 != nil && len(e.sha256) != 32) {
				t.Fatalf("entry %q: sha256 %x argon %q", e.info.Name, e.sha256, e.argon)
			}
			if e.argon != "" && !set.hasArgon {
				t.Fatal("argon2id key in a set that does not say so")
			}
		}
	})
}

// FuzzIntrospectionAnswer: an answer yields an identity only when it is a
// JSON object whose "active" is the boolean true, whose iss is the issuer,
// whose aud lists an accepted audience and whose exp is ahead — a model
// written apart from the parser and judge.
func FuzzIntrospectionAnswer(f *testing.F) {
	const iss, aud = "https://idp.example", "api"
	for _, s := range []string{
		`{"active":true,"iss":"https://idp.example","aud":"api","sub":"a","exp":4102444800}`,
		`{"active":false}`, `{"active":"true","iss":"https://idp.example","aud":"api","sub":"a","exp":4102444800}`,
		`{"active":true,"active":true}`, `{"Active":true}`, `[]`, `{"active":true,"iss":"https://idp.example","aud":["x","api"],"client_id":"c","exp":4102444800}`,
		`{"active":true,"iss":"https://idp.example","aud":"api","sub":"a","exp":4102444800,"cnf":{}}`,
		`{"active":true,"iss":"https://idp.example","aud":"api","sub":"a","exp":4102444800,"token_use":"refresh_token"}`,
		`{"active":true,"iss":"https://idp.example","aud":"api","sub":"a","exp":4102444800,"typ":"Refresh","token_type":"Bearer"}`,
		`{"active":true,"iss":"https://idp.example","aud":"api","sub":"a","exp":4102444800,"TOKEN_TYPE":"n_a"}`,
		`{"active":true,"iss":"https://idp.example","aud":"api","sub":"a","exp":4102444800,"typ":"DPoP"}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Unix(1780000000, 0)
	cfg := IssuerConfig{Name: "corp", Issuer: iss, Audiences: []string{aud}}
	c := Config{Issuers: []IssuerConfig{cfg}}
	c.SetDefaults()
	in := &introspector{is: newIssuer(c.Issuers[0], nil, func() time.Time { return now })}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseIntrospection(b)
		if err != nil {
			return
		}
		v, err := in.judge(m)
		if err != nil {
			return
		}
		var model map[string]json.RawMessage
		if json.Unmarshal(b, &model) != nil {
			t.Fatalf("accepted %q: not an object", b)
		}
		var exp float64
		var audOne string
		var audMany []string
		_ = json.Unmarshal(model["exp"], &exp)
		audOK := json.Unmarshal(model["aud"], &audOne) == nil && audOne == aud ||
			json.Unmarshal(model["aud"], &audMany) == nil && slices.Contains(audMany, aud)
		if string(model["active"]) != "true" || string(model["iss"]) != `"`+iss+`"` || !audOK ||
			!now.Before(time.Unix(int64(exp), 0).Add(30*time.Second)) || model["cnf"] != nil {
			t.Fatalf("accepted %q as %q", b, v.id)
		}
		// The token kind members (README, "Opaque tokens"): in any case of
		// name and value, each names an access token.
		kinds := map[string][]string{
			"token_type": {"Bearer", "N_A", "access_token", "urn:ietf:params:oauth:token-type:access_token"},
			"token_use":  {"access_token", "access"},
			"typ":        {"Bearer", "at+jwt", "application/at+jwt", "access_token"},
		}
		for name, raw := range model {
			for member, ok := range kinds {
				var s string
				if strings.EqualFold(name, member) && (json.Unmarshal(raw, &s) != nil ||
					!slices.ContainsFunc(ok, func(a string) bool { return strings.EqualFold(a, s) })) {
					t.Fatalf("accepted %q: %s does not name an access token", b, name)
				}
			}
			if strings.EqualFold(name, "cnf") {
				t.Fatalf("accepted %q: sender-constrained", b)
			}
		}
		if !v.token.Introspected {
			t.Fatal("not marked introspected")
		}
	})
}

// The ApiKey authorization grammar, as bearer's: the scheme in any case,
// 1*SP, a token68; an attempt is any element starting with the scheme.
var (
	apiKeyValid   = regexp.MustCompile(`^[ \t]*(?i:apikey) +([A-Za-z0-9._~+/-]+=*)[ \t]*$`)
	apiKeyAttempt = regexp.MustCompile("(?:^|,)[\t\n\v\f\r \\x{85}\\p{Z}]*(?i:apikey)(?:$|[^!#$%&'*+.^_`|~0-9A-Za-z-])")
)

func FuzzAPIKeyCredential(f *testing.F) {
	for _, s := range []string{"ApiKey x", "apikey  y", "ApiKey", "ApiKeyx", "Bearer x,ApiKey y", "APIKEY\tx", "ApiKey a,ApiKey b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		key, present := apiKeyCredential(h)
		m := apiKeyValid.FindStringSubmatch(h)
		switch {
		case m != nil && (key != m[1] || !present):
			t.Fatalf("%q: got %q %v, want %q", h, key, present, m[1])
		case m == nil && key != "":
			t.Fatalf("%q: got key %q from a malformed header", h, key)
		case m == nil && present != apiKeyAttempt.MatchString(h):
			t.Fatalf("%q: present %v, attempt %v", h, present, apiKeyAttempt.MatchString(h))
		}
	})
}
