package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

// TestRevokeCLITakesEffect: `warden revoke --subject` takes the principal
// as records and identity headers show it, and the next Check of a running
// Warden denies the token — through Redis (and every replica's mirror) and
// through the admin API of a Warden with the memory store. A
// client-credentials token without sub is revoked as dev|svc; the issuer
// may be given by URL. An unknown issuer is exit 2, never "revoked".
func TestRevokeCLITakesEffect(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	t.Setenv("WARDEN_CONFIG", "")
	srv := redistest.Start(t)
	redisCfg, redisAddr := quickstartCopy(t)
	rewrite(t, redisCfg, "store: {kind: memory}", "store: {kind: redis, redis: {addrs: ['"+srv.Addr+"']}}")
	memCfg, memAddr := quickstartCopy(t)
	serveWith(t, redisCfg, redisAddr)
	serveWith(t, memCfg, memAddr)

	token := func(cfg string, args ...string) string {
		t.Helper()
		code, out, errs := runCLI(t, append([]string{"dev", "token", "--config", cfg, "--groups", "readers"}, args...)...)
		if code != 0 {
			t.Fatalf("dev token: %d %s", code, errs)
		}
		return strings.TrimSpace(out)
	}
	reason := func(addr, tok string) string {
		t.Helper()
		_, out, errs := runCLI(t, "check", "--output", "json", "--server", addr, "--url", "http://localhost:8080/orders", "--header", "authorization: Bearer "+tok)
		var c checkOut
		if err := json.Unmarshal([]byte(out), &c); err != nil {
			t.Fatalf("check: %v\n%s%s", err, out, errs)
		}
		return c.Reason
	}
	// A revocation through Redis reaches the server's mirror by pub/sub: wait
	// for it, bounded.
	eventually := func(addr, tok, want string) string {
		t.Helper()
		got := ""
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if got = reason(addr, tok); got == want {
				break
			}
		}
		return got
	}

	for _, tc := range []struct {
		name, cfg, addr, subject, want string
		tokenArgs                      []string
		revokeArgs                     []string
	}{
		{"client credentials via Redis", redisCfg, redisAddr, "dev|svc", "dev|svc",
			[]string{"--sub", "x", "--claim", `sub=""`, "--claim", "client_id=svc"}, []string{"--config", redisCfg}},
		{"user by issuer URL via Redis", redisCfg, redisAddr, identity.DevIssuerURL + "/|bob", "dev|bob",
			[]string{"--sub", "bob"}, []string{"--config", redisCfg}},
		{"client credentials via the admin API", memCfg, memAddr, "dev|svc", "dev|svc",
			[]string{"--sub", "x", "--claim", `sub=""`, "--claim", "client_id=svc"}, []string{"--config", memCfg}},
		{"record form via --server", memCfg, memAddr, `User::"dev|carol"`, "dev|carol",
			[]string{"--sub", "carol"}, []string{"--server", adminAddr(t, memCfg)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := token(tc.cfg, tc.tokenArgs...)
			if got := reason(tc.addr, tok); got != "policy_allow" {
				t.Fatalf("before: %s", got)
			}
			code, out, errs := runCLI(t, append(append([]string{"revoke"}, tc.revokeArgs...), "--subject", tc.subject)...)
			if code != 0 || out != "revoked subject "+tc.want+"\n" {
				t.Fatalf("revoke: %d %q %s", code, out, errs)
			}
			if got := eventually(tc.addr, tok, "token_revoked"); got != "token_revoked" {
				t.Errorf("after revoking %s: %s", tc.subject, got)
			}
			// --undo takes it back, read the same way: the token is let in.
			code, out, errs = runCLI(t, append(append([]string{"revoke", "--undo"}, tc.revokeArgs...), "--subject", tc.subject)...)
			if code != 0 || out != "unrevoked subject "+tc.want+"\n" {
				t.Fatalf("revoke --undo: %d %q %s", code, out, errs)
			}
			if got := eventually(tc.addr, tok, "policy_allow"); got != "policy_allow" {
				t.Errorf("after unrevoking %s: %s", tc.subject, got)
			}
		})
	}

	// --undo takes a target only: no times, no list.
	for _, args := range [][]string{
		{"--undo", "--config", redisCfg, "--jti", "j1", "--exp", "2030-01-01T00:00:00Z"},
		{"--undo", "--config", redisCfg, "--subject", "dev|bob", "--before", "2030-01-01T00:00:00Z"},
		{"--undo", "--config", redisCfg},
		{"list", "--undo", "--config", redisCfg},
	} {
		if code, out, errs := runCLI(t, append([]string{"revoke"}, args...)...); code != 2 || out != "" || !strings.Contains(errs, "--undo") {
			t.Errorf("revoke %v: %d %q %q", args, code, out, errs)
		}
	}

	for _, args := range [][]string{
		{"--config", redisCfg, "--subject", "corp|alice"},
		{"--config", redisCfg, "--subject", "https://idp.example.com|alice"},
		{"--config", memCfg, "--subject", "dev|"},
		{"--server", adminAddr(t, memCfg), "--subject", "corp|alice"},
		{"--server", adminAddr(t, memCfg), "--subject", "alice"},
		{"--config", memCfg, "--subject", "dev|alice "}, // never a principal: tokens with such ids are refused
		{"--config", memCfg, "--subject", "dev|alice\t"},
		{"--server", adminAddr(t, memCfg), "--subject", "dev|alice "},
	} {
		code, out, errs := runCLI(t, append([]string{"revoke"}, args...)...)
		if code != 2 || strings.Contains(out, "revoked") || !strings.Contains(errs, "ISSUER|ID") && !strings.Contains(errs, "unknown issuer") && !strings.Contains(errs, "no id") && !strings.Contains(errs, "in the id") && !strings.Contains(errs, "end of the id") {
			t.Errorf("revoke %v: %d %q %q", args, code, out, errs)
		}
	}
}
