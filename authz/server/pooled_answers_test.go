package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/wardenauthz/warden/authz/config"
)

// TestConcurrentAnswersAreTheirOwn: answers are built in slabs that go
// back to a pool once gRPC has written them. Callers with different
// identities, allowed and denied, at once over one connection: every
// answer names only its own caller and carries its own decision id, in
// its headers, its body and its metadata alike.
func TestConcurrentAnswersAreTheirOwn(t *testing.T) {
	e := start(t, func(c *config.Config) { c.RateLimit.Rules[0].Limit, c.RateLimit.Rules[0].Burst = 1e9, 1e9 })
	const callers, each = 8, 150
	reqs := make([]*authv3.CheckRequest, callers)
	for i := range reqs {
		groups := []string{"staff"}
		if i%2 == 1 {
			groups = nil // denied by policy
		}
		reqs[i] = sample(t, "01-get-bearer-jwt.json", e.token(t, fmt.Sprintf("user%d", i), groups...))
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			sub := fmt.Sprintf("user%d", i)
			for range each {
				resp, err := e.client.Check(context.Background(), reqs[i])
				if err != nil {
					t.Error(err)
					return
				}
				if msg := foreign(resp, sub, i%2 == 0); msg != "" {
					t.Errorf("%s: %s\n%v", sub, msg, resp)
					return
				}
				id := resp.GetDynamicMetadata().GetFields()["decision_id"].GetStringValue()
				mu.Lock()
				dup := seen[id]
				seen[id] = true
				mu.Unlock()
				if dup {
					t.Errorf("%s: decision id %s answered twice", sub, id)
					return
				}
			}
		})
	}
	wg.Wait()
}

// foreign says what in resp is not the answer to sub (allowed or not).
func foreign(resp *authv3.CheckResponse, sub string, allowed bool) string {
	md := resp.GetDynamicMetadata().GetFields()
	id := md["decision_id"].GetStringValue()
	principal := `User::"corp|` + sub + `"`
	if got := md["principal"].GetStringValue(); got != principal {
		return "metadata principal " + got
	}
	headers := map[string]string{}
	var body string
	if ok := resp.GetOkResponse(); ok != nil {
		if !allowed {
			return "allowed"
		}
		for _, h := range ok.GetHeaders() {
			headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		if headers["x-warden-subject"] != sub || headers["x-warden-principal"] != principal {
			return "identity headers " + headers["x-warden-subject"] + " " + headers["x-warden-principal"]
		}
	} else {
		if allowed {
			return "denied"
		}
		for _, h := range resp.GetDeniedResponse().GetHeaders() {
			headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		body = resp.GetDeniedResponse().GetBody()
		if !strings.Contains(body, `"decision_id":"`+id+`"`) {
			return "body " + body
		}
	}
	if id == "" || headers["x-warden-decision-id"] != id {
		return "decision id header " + headers["x-warden-decision-id"] + ", metadata " + id
	}
	return ""
}
