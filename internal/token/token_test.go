package token

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go"
)

// TestSeal: the principal is the entity of the type and id identity gives,
// and the header values percent-encode '%' and the separator in each item
// (and nothing else), so an upstream splits them back into the items.
func TestSeal(t *testing.T) {
	v := &View{Groups: []string{"staff", "cn=admins,ou=groups", "50%,off", "a b"}, Scopes: []string{"orders:read", "x y", "100%"}}
	v.Seal("User", `corp|al"ice`)
	if want := cedar.NewEntityUID("User", `corp|al"ice`); v.Principal() != want {
		t.Errorf("principal: got %v, want %v", v.Principal(), want)
	}
	if got, want := v.PrincipalText(), `User::"corp|al\"ice"`; got != want {
		t.Errorf("principal text: got %q, want %q", got, want)
	}
	if got, want := v.GroupsHeader(), "staff,cn=admins%2Cou=groups,50%25%2Coff,a b"; got != want {
		t.Errorf("groups: got %q, want %q", got, want)
	}
	if got, want := v.ScopesHeader(), "orders:read x%20y 100%25"; got != want {
		t.Errorf("scopes: got %q, want %q", got, want)
	}
	empty := &View{}
	empty.Seal("Client", "corp|svc")
	if empty.GroupsHeader() != "" || empty.ScopesHeader() != "" {
		t.Errorf("no groups or scopes: got %q and %q", empty.GroupsHeader(), empty.ScopesHeader())
	}
}

// TestRecord: registered fields win over raw claims, absent times (and a
// time of 0) are left out, present ones come as numbers and datetimes.
func TestRecord(t *testing.T) {
	v := &View{Iss: "https://idp", Sub: "alice", Acr: "",
		Exp: time.Unix(1_700_003_600, 0), Iat: time.Unix(0, 0),
		Claims: map[string]any{"sub": "mallory", "acr": "mfa", "tenant": "t1", "iat": json.Number("5")}}
	rec := v.Record()
	want := map[string]string{"iss": "https://idp", "sub": "alice", "tenant": "t1", "exp": "1700003600",
		"exp_datetime": "2023-11-14T23:13:20.000Z", "acr": "", "iat": "", "iat_datetime": "", "auth_time": ""}
	for k, w := range want {
		got, ok := rec.Get(cedar.String(k))
		switch {
		case w == "" && ok:
			t.Errorf("%s: got %v, want it left out", k, got)
		case w != "" && (!ok || got.String() != w):
			t.Errorf("%s: got %v (present %v), want %s", k, got, ok, w)
		}
	}
}

// TestRecordOnce: concurrent Checks sharing a view get one record, built
// once (a field changed after the first call changes nothing).
func TestRecordOnce(t *testing.T) {
	v := &View{Iss: "i", Sub: "s", Claims: map[string]any{"n": json.Number("1")}}
	recs := make([]cedar.Record, 8)
	var wg sync.WaitGroup
	for i := range recs {
		wg.Go(func() { recs[i] = v.Record() })
	}
	wg.Wait()
	for _, r := range recs[1:] {
		if !r.Equal(recs[0]) {
			t.Fatalf("records differ: %v and %v", r, recs[0])
		}
	}
	v.Sub = "other"
	if got, _ := v.Record().Get("sub"); got != cedar.String("s") {
		t.Errorf("sub after a change: got %v, want the first record's", got)
	}
}
