package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/wardenauthz/warden/authz/checkreq"
)

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", stderr)
	method := fs.String("method", "GET", "HTTP method")
	rawURL := fs.String("url", "", "request URL, e.g. http://localhost:8080/orders/42 (required)")
	var headers, exts multi
	fs.Var(&headers, "header", "request header 'name: value'; repeatable")
	fs.Var(&exts, "context-ext", "ext_authz context extension k=v (e.g. service=orders); repeatable")
	sourceIP := fs.String("source-ip", "127.0.0.1", "client address Envoy sees")
	peer := fs.String("peer-principal", "", "mTLS peer SPIFFE ID (source.principal)")
	body := fs.String("body", "", "request body (as with_request_body)")
	serverAddr := fs.String("server", "", "ask a running Warden at host:port")
	cfgFile := fs.String("config", "", "evaluate in-process with this config instead of --server")
	output := fs.String("output", "text", "text or json")
	explain := fs.Bool("explain", false, "explain the decision: route, entities, each policy that could apply, the deciding rule (in-process: --config FILE, else $WARDEN_CONFIG or the embedded quick start)")
	timeout := fs.Duration("timeout", 5*time.Second, "time limit")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if *rawURL == "" {
		fmt.Fprintln(stderr, "warden check: --url is required")
		return exitError
	}
	if *output != "text" && *output != "json" {
		fmt.Fprintln(stderr, "warden check: --output must be text or json")
		return exitError
	}
	if *explain && *serverAddr != "" {
		fmt.Fprintln(stderr, "warden check: --explain evaluates in-process: give --config FILE (or neither, for $WARDEN_CONFIG or the embedded quick start), not --server")
		return exitError
	}
	if (*serverAddr == "") == (*cfgFile == "") && !*explain {
		fmt.Fprintln(stderr, "warden check: give exactly one of --server ADDR or --config FILE")
		return exitError
	}
	extMap := map[string]string{}
	for _, e := range exts {
		k, v, ok := strings.Cut(e, "=")
		if !ok || k == "" {
			fmt.Fprintf(stderr, "warden check: --context-ext %q: want k=v\n", e)
			return exitError
		}
		extMap[k] = v
	}
	if len(extMap) == 0 {
		extMap = nil
	}
	req, err := checkreq.Build(checkreq.HTTP{
		Method: *method, URL: *rawURL, Headers: headers, Body: *body,
		SourceIP: *sourceIP, PeerPrincipal: *peer, ContextExtensions: extMap,
	})
	if err != nil {
		fmt.Fprintf(stderr, "warden check: %v\n", err)
		return exitError
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var resp *authv3.CheckResponse
	var ex *checkExplanation
	if *serverAddr != "" {
		resp, err = checkRemote(ctx, *serverAddr, req)
	} else {
		resp, ex, err = checkLocal(ctx, *cfgFile, req, *explain)
	}
	if err != nil {
		fmt.Fprintf(stderr, "warden check: %v\n", err)
		return exitError
	}
	res := checkreq.Describe(resp)
	switch {
	case *output == "json" && ex != nil:
		printJSON(stdout, explainedResult{Result: res, Explanation: ex})
	case *output == "json":
		printJSON(stdout, res)
	default:
		printResult(stdout, res)
		if ex != nil {
			ex.writeText(stdout, res)
		}
	}
	if res.Decision == "allow" {
		return exitOK
	}
	return exitDeny
}

func checkRemote(ctx context.Context, addr string, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return authv3.NewAuthorizationClient(conn).Check(ctx, req)
}

func printResult(w io.Writer, r checkreq.Result) {
	fmt.Fprintf(w, "decision:    %s\n", r.Decision)
	fmt.Fprintf(w, "status:      %d (%s)\n", r.Status, r.GRPCCode)
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-12s %s\n", k+":", v)
		}
	}
	line("reason", r.Reason)
	line("principal", r.Principal)
	line("action", r.Action)
	line("resource", r.Resource)
	if len(r.Policies) > 0 {
		line("policies", strings.Join(r.Policies, ", "))
	} else {
		line("policies", "(none)")
	}
	for _, e := range r.Errors {
		line("error", e)
	}
	line("decision_id", r.DecisionID)
	hdrs := func(title string, hs []checkreq.Header) {
		if len(hs) == 0 {
			return
		}
		fmt.Fprintf(w, "%s:\n", title)
		for _, h := range hs {
			fmt.Fprintf(w, "  %s: %s\n", h.Key, h.Value)
		}
	}
	hdrs("headers to upstream", r.UpstreamHeaders)
	if len(r.HeadersToRemove) > 0 {
		fmt.Fprintf(w, "headers removed before upstream: %s\n", strings.Join(r.HeadersToRemove, ", "))
	}
	hdrs("headers to client", r.DownstreamHeaders)
	if r.Body != "" {
		fmt.Fprintf(w, "body:\n  %s\n", r.Body)
	}
}
