package identity

import (
	"encoding/base64"
	"errors"
	"testing"
)

// TestPreparseClaimNameCaseVariants: go-oidc decodes iss, sub, aud, exp,
// ... with encoding/json, which matches names without case; Warden reads
// them exactly. A token whose claims differ only in case ("EXP" beside
// "exp", a lone "SUB") would be read one way by Warden and another by
// go-oidc or a backend decoding it into a struct, so preparse refuses it.
func TestPreparseClaimNameCaseVariants(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	hdr := enc([]byte(`{"alg":"RS256","kid":"k"}`))
	sig := enc([]byte("sig"))
	tok := func(claims string) string { return hdr + "." + enc([]byte(claims)) + "." + sig }
	for _, c := range []string{
		`{"iss":"https://a","exp":1,"EXP":99999999999}`,
		`{"iss":"https://a","sub":"alice","SUB":"admin"}`,
		`{"iss":"https://a","Sub":"admin","client_id":"c"}`,
		`{"iss":"https://a","ISS":"https://b"}`,
		`{"iss":"https://a","\u0045xp":1}`,
		`{"iss":"https://a","aud":"x","Aud":"y"}`,
		`{"iss":"https://a","groups":["u"],"Groups":["admin"]}`,
		`{"iss":"https://a","\u004eonce":"n"}`,
		`{"iss":"https://a","sub":"alice","\u017fub":"admin"}`,
		`{"iss":"https://a","rose":"u","RO\u017fE":"admin"}`,
	} {
		if _, err := preparse(tok(c), 8192); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", c, err)
		}
	}
	for _, c := range []string{
		`{"iss":"https://a","sub":"alice","exp":1,"aud":"x"}`,
		`{"iss":"https://a","sub":"alice","Department":"x","groups":["g"]}`,
	} {
		if _, err := preparse(tok(c), 8192); err != nil {
			t.Errorf("%s: err = %v, want nil", c, err)
		}
	}
}
