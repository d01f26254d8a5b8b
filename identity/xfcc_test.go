package identity_test

import (
	"context"
	"testing"

	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/identity/oidctest"
)

func TestXFCCURI(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`By=spiffe://cluster.local/ns/orders/sa/api;Hash=3c6e;Subject="";URI=spiffe://cluster.local/ns/frontend/sa/web`, "spiffe://cluster.local/ns/frontend/sa/web"},
		{`URI=spiffe://a/ns/x/sa/y,By=b;URI=spiffe://cluster.local/ns/z/sa/w`, "spiffe://cluster.local/ns/z/sa/w"},
		{`Subject="CN=a,OU=b;c";URI=spiffe://cluster.local/ns/q/sa/r`, "spiffe://cluster.local/ns/q/sa/r"},
		{`URI=spiffe://cluster.local/ns/a/sa/b;URI=spiffe://cluster.local/ns/c/sa/d`, ""},
		{`Subject="unbalanced;URI=spiffe://cluster.local/ns/a/sa/b`, ""},
		{`Hash=abc`, ""},
		{``, ""},
	} {
		if got := identity.XFCCURI(tc.in); got != tc.want {
			t.Errorf("XFCCURI(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestXFCCOnlyWhenTrusted(t *testing.T) {
	is := oidctest.New(t)
	xfcc := `By=spiffe://cluster.local/ns/orders/sa/api;URI=spiffe://cluster.local/ns/frontend/sa/web`
	plain, _ := newAuth(t, is)
	if id, _ := plain.Authenticate(context.Background(), identity.Input{XFCC: xfcc}); id.Kind != identity.Anonymous {
		t.Errorf("untrusted XFCC: got %v, want Anonymous", id.Kind)
	}
	trusting, _ := newAuth(t, is, func(c *identity.Config) { c.Workloads.TrustXFCC = true })
	id, _ := trusting.Authenticate(context.Background(), identity.Input{XFCC: xfcc})
	if id.Kind != identity.Workload || id.ID != "spiffe://cluster.local/ns/frontend/sa/web" {
		t.Errorf("trusted XFCC: got %v %q", id.Kind, id.ID)
	}
	id, _ = trusting.Authenticate(context.Background(), identity.Input{XFCC: xfcc, PeerPrincipal: "spiffe://cluster.local/ns/billing/sa/invoicer"})
	if id.ID != "spiffe://cluster.local/ns/billing/sa/invoicer" {
		t.Errorf("source.principal must win over XFCC: got %q", id.ID)
	}
}
