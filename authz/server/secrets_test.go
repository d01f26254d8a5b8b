package server_test

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"log/slog"

	"github.com/wardenauthz/warden/authz/admin"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/testlog"
	adminv1 "github.com/wardenauthz/warden/proto/warden/admin/v1"
)

// jwtRE finds anything shaped like a JWS (header.payload.).
var jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.`)

// TestNoSecretsInLogs drives every kind of decision and admin call with
// debug logging on and every sink enabled, then scans all of it for tokens,
// cookies, API keys and admin tokens.
func TestNoSecretsInLogs(t *testing.T) {
	var logs, stdout testlog.Buffer
	dir := t.TempDir()
	file := filepath.Join(dir, "decisions.jsonl")
	tokens := adminTokens(t)
	is := oidctest.New(t)
	e := startOpts(t, is, server.Options{
		Stdout: &stdout,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, func(c *config.Config) {
		c.DecisionLog.Sinks = []config.Sink{{Kind: "stdout"}, {Kind: "file", Path: file, MaxSizeMB: 1, MaxBackups: 1}}
		c.Admin.TokenFile = tokens
		c.RateLimit.Rules[0].Limit, c.RateLimit.Rules[0].Burst = 5, 5
		c.DecisionLog.Replayable = true // records then hold the whole Cedar context
	})
	const cookie, apiKey = "session=c00kie-secret-value", "api-key-secret-value"
	secrets := []string{cookie, apiKey, readerToken, revokerToken}
	good := e.token(t, "alice", "staff")
	p := strings.Split(good, ".")
	forged := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + p[1] + "."
	sends := []string{good, forged, p[0] + "." + p[1] + ".AAAA", e.token(t, "mallory"), "not-a-jwt-secret-value", ""}
	secrets = append(secrets, "not-a-jwt-secret-value")
	testlog.Secret(t, secrets...)
	ctx := context.Background()
	for i := range 12 { // past the rate limit too
		for _, tok := range sends {
			req := sample(t, "01-get-bearer-jwt.json", tok)
			h := req.Attributes.Request.Http.Headers
			h["cookie"], h["x-api-key"] = cookie, apiKey
			if tok == "" {
				delete(h, "authorization")
			}
			if i == 3 {
				h["authorization"] = "Bearer " + tok + ", Bearer " + good // repeated headers, joined by Envoy
			}
			if _, err := e.client.Check(ctx, req); err != nil {
				t.Fatal(err)
			}
		}
	}
	reader := dialAdmin(t, e.admin, admin.ClientOptions{TokenFile: tokenFileOf(t, readerToken)})
	wrong := dialAdmin(t, e.admin, admin.ClientOptions{TokenFile: tokenFileOf(t, revokerToken)})
	if _, err := reader.QueryDecisions(ctx, &adminv1.QueryDecisionsRequest{}); err != nil {
		t.Fatal(err)
	}
	_, _ = wrong.QueryDecisions(ctx, &adminv1.QueryDecisionsRequest{})
	e.cancel() // flush the decision log
	<-e.done
	e.done <- nil // for the cleanup

	fileOut, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"slog": logs.String(), "stdout sink": stdout.String(), "file sink": string(fileOut)} {
		if out == "" && name != "slog" {
			t.Errorf("%s: empty", name)
		}
		if m := jwtRE.FindString(out); m != "" {
			t.Errorf("%s holds a token: %s...", name, m[:12])
		}
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s holds %q", name, s)
			}
		}
	}
	if !strings.Contains(string(fileOut), `"cedar":{`) {
		t.Error("records hold no Cedar request: the replayable context was not scanned")
	}
	if !strings.Contains(logs.String(), `"admin call"`) {
		t.Error("admin calls were not logged")
	}
}
