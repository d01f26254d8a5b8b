package token

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/cedar-policy/cedar-go"
)

// FuzzClaimValue: any JSON claim set converts to a Cedar token record
// without panicking, and every value that Cedar can hold is kept.
func FuzzClaimValue(f *testing.F) {
	f.Add(`{"a":1,"b":[1,"x",{"c":true}],"d":1.5,"e":null,"f":1e400,"g":{"h":{"i":[[]]}}}`)
	f.Add(`{"amr":["pwd","otp"],"scope":"a b","n":-9223372036854775809}`)
	f.Fuzz(func(t *testing.T, src string) {
		d := json.NewDecoder(bytes.NewReader([]byte(src)))
		d.UseNumber()
		var claims map[string]any
		if d.Decode(&claims) != nil {
			return
		}
		rec := (&View{Iss: "i", Sub: "s", Claims: claims}).Record()
		if _, err := rec.MarshalJSON(); err != nil {
			t.Fatalf("record does not marshal: %v", err)
		}
		registered := map[string]bool{"iss": true, "sub": true, "client_id": true, "acr": true, "aud": true,
			"scope": true, "groups": true, "amr": true, "iat": true, "exp": true, "auth_time": true}
		for k, v := range claims {
			s, ok := v.(string)
			if !ok || registered[k] {
				continue
			}
			if got, ok := rec.Get(cedar.String(k)); !ok || got != cedar.String(s) {
				t.Fatalf("claim %q: got %v, want %q", k, got, s)
			}
		}
	})
}
