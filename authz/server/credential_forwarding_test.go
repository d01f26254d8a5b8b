package server_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/authz/checkreq"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/testlog"
)

// shippedResponse is the response section of the embedded quick start
// config, as a user who never sets it gets it (forward_authorization
// defaults to true there; the test config sets it false).
func shippedResponse(t *testing.T) config.Response {
	t.Helper()
	c, err := config.LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	if c.Response.ForwardAuthorization == nil || !*c.Response.ForwardAuthorization {
		t.Fatal("the shipped config no longer forwards authorization: this test would prove nothing")
	}
	return c.Response
}

// TestAPIKeyNeverForwardedUpstream: with the shipped response settings
// (forward_authorization: true), an allowed API-key request still has its
// authorization header removed: the key is Warden's credential, never the
// upstream's. Tokens follow forward_authorization (forwarded here).
func TestAPIKeyNeverForwardedUpstream(t *testing.T) {
	var stdout testlog.Buffer
	resp := shippedResponse(t)
	e, keys := apiKeyEnv(t, &stdout, func(c *config.Config) { c.Response = resp })
	for _, auth := range []string{"ApiKey " + keys["partner-acme"], "apikey  " + keys["partner-acme"]} {
		r := e.check(t, checkreq.HTTP{URL: "https://api.example.com/v1/orders/42", Headers: []string{"authorization: " + auth}})
		if reasonOf(r) != "policy_allow" {
			t.Fatalf("gold partner: %s", reasonOf(r))
		}
		if !slices.Contains(r.GetOkResponse().GetHeadersToRemove(), "authorization") {
			t.Errorf("allowed, and the API key is forwarded upstream: removes %v", r.GetOkResponse().GetHeadersToRemove())
		}
	}
	// Control: a JWT under the same settings is forwarded.
	tok := e.token(t, "alice", "staff")
	r := e.check(t, checkreq.HTTP{URL: "https://api.example.com/v1/orders/42", Headers: []string{"authorization: Bearer " + tok}})
	if r.GetOkResponse() == nil {
		t.Fatalf("JWT control not allowed (%s)", reasonOf(r))
	}
	if slices.Contains(r.GetOkResponse().GetHeadersToRemove(), "authorization") {
		t.Error("a JWT is stripped although forward_authorization is true")
	}
}

// TestIntrospectionOutageDetail: the 503 for an introspection endpoint
// that is down says so (not "token issuer keys unavailable").
func TestIntrospectionOutageDetail(t *testing.T) {
	is := oidctest.New(t)
	is.EnableIntrospection("warden", "s3cret")
	t.Setenv("WARDEN_TEST_INTROSPECTION_SECRET", "s3cret")
	e := startOpts(t, is, server.Options{Now: time.Now}, func(c *config.Config) {
		c.Identity.Issuers[0].Introspection = &identity.IntrospectionConfig{ClientID: "warden", ClientSecretEnv: "WARDEN_TEST_INTROSPECTION_SECRET"}
	})
	is.SetIntrospectionDown(true)
	tok := is.Opaque(is.Claims("alice", aud))
	testlog.Secret(t, tok)
	r := e.check(t, checkreq.HTTP{URL: "https://api.example.com/v1/orders/42", Headers: []string{"authorization: Bearer " + tok}})
	code, body := denied(t, r)
	if code != 503 || !strings.Contains(body, "token introspection unavailable") || strings.Contains(body, "issuer keys") {
		t.Errorf("endpoint down: %d %s", code, body)
	}
}
