package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/wardenauthz/warden/authz/checkreq"
	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/policy"
)

// storeSyncTimeout bounds the wait for the Redis store's revocations.
const storeSyncTimeout = 3 * time.Second

// checkLocal decides req in-process with the config in file, as a server
// started with it would once ready: issuer keys fetched and, with a Redis
// store, its revocations read (an unreachable Redis is an error, not a
// 503). With explain, the explanation comes too.
func checkLocal(ctx context.Context, file string, req *authv3.CheckRequest, explain bool) (*authv3.CheckResponse, *checkExplanation, error) {
	cfg, err := loadConfig(file)
	if err != nil {
		return nil, nil, err
	}
	cfg.DecisionLog.Sinks = nil // the answer goes to stdout, not a log
	svc, err := server.New(cfg, server.Options{Logger: slog.New(slog.DiscardHandler), Stdout: io.Discard})
	if err != nil {
		return nil, nil, err
	}
	defer svc.Close()
	sctx, cancel := context.WithTimeout(ctx, storeSyncTimeout)
	err = svc.SyncRevocations(sctx) // nothing to do with the memory store
	cancel()
	if err != nil {
		return nil, nil, fmt.Errorf("store: Redis at %s is unreachable, so revocations cannot be checked: %v", strings.Join(cfg.Store.Redis.Addrs, ", "), err)
	}
	svc.Authn.Start(ctx)
	for len(svc.Authn.NotReady()) > 0 {
		select {
		case <-ctx.Done():
			var why []string
			for _, ks := range svc.Authn.KeyStatus() {
				if !ks.Ready {
					why = append(why, ks.Issuer+" ("+cmp.Or(ks.LastError, "no answer yet")+")")
				}
			}
			return nil, nil, fmt.Errorf("issuer keys not fetched: %s", strings.Join(why, ", "))
		case <-time.After(50 * time.Millisecond):
		}
	}
	out := svc.Authorizer.Evaluate(ctx, req)
	_ = svc.Log.Close(ctx)
	if !explain {
		return out.Response, nil, nil
	}
	ex := &checkExplanation{Stage: "policy"}
	if out.Request == nil || out.Result == nil {
		ex.Stage = "before_policy"
	} else {
		ex.Policy = svc.Policies.Current().Explain(out.Request)
		if err := ex.Policy.Agrees(*out.Result); err != nil {
			ex.Note = err.Error() // a bug: say so rather than explain wrongly
		}
	}
	return out.Response, ex, nil
}

// checkExplanation is `warden check --explain`'s explanation.
type checkExplanation struct {
	// Stage is where the answer was decided: policy, or before_policy (the
	// request limits, the credentials or the revocation check answered).
	Stage  string              `json:"stage"`
	Note   string              `json:"note,omitempty"`
	Policy *policy.Explanation `json:"policy,omitempty"`
}

// explainedResult is --explain --output json.
type explainedResult struct {
	checkreq.Result
	Explanation *checkExplanation `json:"explanation"`
}

func (ex *checkExplanation) writeText(w io.Writer, res checkreq.Result) {
	fmt.Fprintln(w, "explanation:")
	if ex.Policy == nil {
		fmt.Fprintf(w, "  decided before any policy: %s (%d)", res.Reason, res.Status)
		switch res.Reason {
		case "token_invalid", "anonymous_deny", "unavailable":
			fmt.Fprint(w, ": the credentials were checked first")
		case "token_revoked":
			fmt.Fprint(w, ": the token is revoked")
		case "request_invalid":
			fmt.Fprint(w, ": the request is over server.limits")
		}
		fmt.Fprintln(w)
		return
	}
	ex.Policy.WriteText(w, "  ")
	switch {
	case ex.Note != "":
		fmt.Fprintf(w, "  note:       %s\n", ex.Note)
	case res.Reason != ex.Policy.Reason:
		then := map[string]string{
			"anonymous_deny": "the principal is anonymous, so the deny asks for credentials",
			"rate_limited":   "the policies allowed, then a rate limit answered",
			"unavailable":    "the policies allowed, then the rate-limit store failed",
		}[res.Reason]
		fmt.Fprintf(w, "  then:       %s %d %s\n", res.Decision, res.Status, cmp.Or(then, res.Reason))
	}
}
