package identity_test

import (
	"strings"
	"testing"

	"github.com/wardenauthz/warden/identity"
)

func TestRevocationSubject(t *testing.T) {
	c := identity.Config{
		Issuers: []identity.IssuerConfig{
			{Name: "corp", Issuer: "https://login.corp.example/"},
			{Name: "partner", Issuer: "https://idp.partner.example/tenant"},
		},
		DevIssuer: identity.DevIssuerConfig{Enabled: true},
	}
	for _, tc := range []struct{ in, want, err string }{
		{in: "corp|alice", want: "corp|alice"},
		{in: "dev|svc", want: "dev|svc"},
		{in: "https://login.corp.example/|alice", want: "corp|alice"},
		{in: "https://login.corp.example|alice", want: "corp|alice"},
		{in: "https://idp.partner.example/tenant|bob", want: "partner|bob"},
		{in: "https://idp.partner.example/tenant/|bob", want: "partner|bob"},
		{in: "https://dev.warden.invalid|svc", want: "dev|svc"},
		{in: "corp|auth0|123", want: "corp|auth0|123"},
		{in: "https://login.corp.example/|auth0|123", want: "corp|auth0|123"},
		{in: `User::"corp|alice"`, want: "corp|alice"},
		{in: `Client::"dev|svc"`, want: "dev|svc"},
		{in: `User::"https://login.corp.example/|alice"`, want: "corp|alice"},
		{in: "evil|alice", err: "unknown issuer"},
		{in: "https://login.corp.example.evil|alice", err: "unknown issuer"},
		{in: "https://LOGIN.corp.example/|alice", err: "unknown issuer"},
		{in: "Corp|alice", err: "unknown issuer"},
		{in: "alice", err: "want ISSUER|ID"},
		{in: "corp|", err: "no id"},
		{in: "dev|", err: "no id"},
		{in: "", err: "want ISSUER|ID"},
		{in: "corp|a\nb", err: "control character"},
		{in: "corp|alice\u0085", err: "control character"},
		{in: "corp|alice ", err: "whitespace at the start or end"},
		{in: "corp|alice\u00a0", err: "whitespace at the start or end"},
		{in: `User::"corp|alice "`, err: "whitespace at the start or end"},
		{in: `User::corp|alice`, err: `want User::"ISSUER|ID"`},
		{in: `Workload::"spiffe://cluster.local/ns/a/sa/b"`, err: "only token principals"},
		{in: strings.Repeat("x", 5000), err: "at most"},
	} {
		got, err := c.RevocationSubject(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: got %q, %v; want an error with %q", tc.in, got, err, tc.err)
		}
	}
	// Two issuers that differ only by a trailing slash: each URL names its own.
	twins := identity.Config{Issuers: []identity.IssuerConfig{
		{Name: "slash", Issuer: "https://idp.example.com/"},
		{Name: "bare", Issuer: "https://idp.example.com"},
	}}
	for in, want := range map[string]string{"https://idp.example.com|x": "bare|x", "https://idp.example.com/|x": "slash|x"} {
		if got, err := twins.RevocationSubject(in); err != nil || got != want {
			t.Errorf("%q: got %q, %v; want %q", in, got, err, want)
		}
	}
	// Without the dev issuer, dev is unknown.
	c.DevIssuer.Enabled = false
	if got, err := c.RevocationSubject("dev|svc"); err == nil || !strings.Contains(err.Error(), "unknown issuer") {
		t.Errorf("dev|svc without the dev issuer: got %q, %v; want an unknown issuer error", got, err)
	}
}
