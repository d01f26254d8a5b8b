// Package policytest runs policy test files (SPEC §6) against a config's
// policies, for `warden policy test`. Two forms:
//
//   - The Cedar CLI's test format (a .json file): a list of
//     {name, request: {principal, action, resource, context}, entities,
//     decision, reason, num_errors}, decided by Cedar alone over every policy
//     (Set.Authorize), the test's entities overlaid on the policy directory's.
//   - Warden's HTTP form (a .yaml or .yml file): a list of requests as a
//     client sends them to Envoy (method, url, headers, token_claims, peer,
//     ...) with the expected decision, status, reasons and reason, decided by
//     the whole Check pipeline exactly as a live Check: the CheckRequest
//     Envoy would send, token verification, workload identity, route
//     mapping, Cedar, rate limits and the answer.
//
// token_claims become a real token, signed by a key made for the run that
// every configured issuer (and the dev issuer) is told to trust
// (identity.Options.TestKey); issuer, audience, typ, lifetime and claim
// mapping are checked as in production, and nothing is fetched. Each HTTP
// file gets its own Warden with a memory store, so rate limits count from
// zero in every file and carry from one case to the next within it.
package policytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cedar-policy/cedar-go"
	"github.com/go-json-experiment/json/jsontext"
	"go.yaml.in/yaml/v3"

	"github.com/wardenauthz/warden/authz/checkreq"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/internal/jsonlist"
	"github.com/wardenauthz/warden/internal/jsonnames"
	"github.com/wardenauthz/warden/policy"
)

// Outcome is one test case's result.
type Outcome struct {
	File string
	Line int
	Name string
	// Failures says how the answer differs from the expectation (none when
	// the test passed).
	Failures []string
	// Got summarizes the answer: "deny 403 policy_deny [p1, p2]".
	Got string
	// Explanation is how the policies decided (Runner.Explain; nil when
	// the request never reached the policies).
	Explanation *policy.Explanation
}

// Passed reports whether the answer was the expected one.
func (o Outcome) Passed() bool { return len(o.Failures) == 0 }

// Runner runs test files against one config.
type Runner struct {
	// Explain adds each test's explanation to its Outcome
	// (policy.Set.Explain); an explanation that disagrees with the
	// decision is a failure.
	Explain bool

	cfg *config.Config
	set *policy.Set
	key *rsa.PrivateKey

	validOnce sync.Once
	valid     func(cedar.Request) error
	validErr  error
}

// New loads cfg's policies and validates them against Warden's model
// (policy.Set.ValidateModel); an error is the policy set's own (as `warden
// policy validate` reports it).
func New(cfg *config.Config) (*Runner, error) {
	set, err := policy.Load(cfg.PolicySource(), cfg.Policy.Routes)
	if err != nil {
		return nil, err
	}
	if errs := set.ValidateModel(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &Runner{cfg: cfg, set: set}, nil
}

// Files lists the test files of paths: each file as given, and every .json,
// .yaml and .yml file under each directory, in order.
func Files(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && formatOf(path) != "" {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no test files (*.json, *.yaml, *.yml)", p)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

func formatOf(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return "cedar"
	case ".yaml", ".yml":
		return "http"
	}
	return ""
}

// RunFile runs every test of one file. An error means the file could not be
// read or has a mistake (file:line: message); no test of it ran then.
func (r *Runner) RunFile(ctx context.Context, path string) ([]Outcome, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	switch formatOf(path) {
	case "cedar":
		return r.runCedar(path, b)
	case "http":
		return r.runHTTP(ctx, path, b)
	}
	return nil, fmt.Errorf("%s: not a test file: want .json (the Cedar CLI's test format) or .yaml (Warden's HTTP form)", path)
}

// ---- The Cedar CLI's format ----

// CedarTest is one test in the Cedar CLI's format.
type CedarTest struct {
	Name    string       `json:"name"`
	Request CedarRequest `json:"request"`
	// Entities: a list in Cedar's entities JSON format, or the path of such
	// a file (relative to the test file). They are laid over the policy
	// directory's entities (an entity given here replaces one of the same
	// uid); Warden's action entities are always there.
	Entities  json.RawMessage `json:"entities"`
	Decision  string          `json:"decision"`
	Reason    *[]string       `json:"reason"`
	NumErrors *int            `json:"num_errors"`
}

// CedarRequest is a CedarTest's request.
type CedarRequest struct {
	Principal entityRef    `json:"principal"`
	Action    entityRef    `json:"action"`
	Resource  entityRef    `json:"resource"`
	Context   cedar.Record `json:"context"`
}

// validRequest checks a test's request against the policy set's schema
// (policy.Set.RequestValidator), built once per Runner.
func (r *Runner) validRequest(q CedarRequest) error {
	r.validOnce.Do(func() { r.valid, r.validErr = r.set.RequestValidator() })
	if r.validErr != nil {
		return r.validErr
	}
	p, a, res := cedar.EntityUID(q.Principal), cedar.EntityUID(q.Action), cedar.EntityUID(q.Resource)
	if p.Type == "" || a.Type == "" || res.Type == "" {
		return nil // reported as missing
	}
	return r.valid(cedar.Request{Principal: p, Action: a, Resource: res, Context: q.Context})
}

// entityRef is an entity uid written as Cedar text (User::"alice"), as the
// Cedar CLI writes them, or as JSON ({"type": "User", "id": "alice"}).
type entityRef cedar.EntityUID

func (e *entityRef) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		var u cedar.EntityUID
		if err := u.UnmarshalCedar([]byte(s)); err != nil {
			return fmt.Errorf(`entity uid %q: want Type::"id" (%v)`, s, err)
		}
		*e = entityRef(u)
		return nil
	}
	var u cedar.EntityUID
	if err := u.UnmarshalJSON(b); err != nil {
		return fmt.Errorf(`entity uid: want "Type::\"id\"" or {"type": ..., "id": ...}: %v`, err)
	}
	*e = entityRef(u)
	return nil
}

func (r *Runner) runCedar(file string, b []byte) ([]Outcome, error) {
	els, lerr := jsonlist.Split(b)
	if lerr != nil {
		if lerr.NotList {
			return nil, fmt.Errorf("%s:1: want a JSON list of tests: %v", file, lerr.Err)
		}
		return nil, fmt.Errorf("%s:%d: %v", file, lerr.Line, lerr.Err)
	}
	type loaded struct {
		t    CedarTest
		ents cedar.EntityMap
	}
	var tests []loaded
	var errs []error
	for i, el := range els {
		bad := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("%s:%d: test %d: %s", file, el.Line, i+1, fmt.Sprintf(format, a...)))
		}
		// Read as the Cedar CLI reads it: no member twice, valid UTF-8,
		// names exactly (encoding/json took "Decision" for decision, and
		// the last of two).
		strict := jsontext.Value(bytes.Clone(el.Raw))
		if err := strict.Format(); err != nil {
			bad("%s", strings.TrimPrefix(err.Error(), "jsontext: "))
			continue
		}
		if err := jsonnames.Exact(el.Raw, reflect.TypeFor[CedarTest](), ""); err != nil {
			bad("%v", err)
			continue
		}
		var t CedarTest
		dec := json.NewDecoder(bytes.NewReader(el.Raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&t); err != nil {
			bad("%v", err)
			continue
		}
		if cedar.EntityUID(t.Request.Principal).Type == "" || cedar.EntityUID(t.Request.Action).Type == "" || cedar.EntityUID(t.Request.Resource).Type == "" {
			bad("request needs principal, action and resource")
		}
		if t.Decision != "allow" && t.Decision != "deny" {
			bad("decision %q: want allow or deny", t.Decision)
		}
		if err := r.validRequest(t.Request); err != nil {
			bad("%v", err)
		}
		ents, err := r.testEntities(file, i, t.Entities)
		if err != nil {
			bad("entities: %v", err)
		}
		tests = append(tests, loaded{t, ents})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	out := make([]Outcome, len(tests))
	for i, lt := range tests {
		t := lt.t
		req := cedar.Request{
			Principal: cedar.EntityUID(t.Request.Principal),
			Action:    cedar.EntityUID(t.Request.Action),
			Resource:  cedar.EntityUID(t.Request.Resource),
			Context:   t.Request.Context,
		}
		res := r.set.Authorize(lt.ents, req)
		got := "deny"
		if res.Allow {
			got = "allow"
		}
		o := Outcome{File: file, Line: els[i].Line, Name: t.Name, Got: fmt.Sprintf("%s %s", got, list(res.Reasons))}
		if len(res.Errors) > 0 {
			o.Got += fmt.Sprintf(", errors: %s", strings.Join(res.Errors, "; "))
		}
		if want := t.Decision; got != want {
			o.Failures = append(o.Failures, fmt.Sprintf("decision %s, want %s", got, want))
		}
		if t.Reason != nil && !sameSet(res.Reasons, *t.Reason) {
			o.Failures = append(o.Failures, fmt.Sprintf("reason %s, want %s", list(res.Reasons), list(*t.Reason)))
		}
		if t.NumErrors != nil && len(res.Errors) != *t.NumErrors {
			o.Failures = append(o.Failures, fmt.Sprintf("%d errors, want %d", len(res.Errors), *t.NumErrors))
		}
		if r.Explain {
			o.Explanation = r.set.ExplainCedar(lt.ents, req)
			if err := o.Explanation.Agrees(res); err != nil {
				o.Failures = append(o.Failures, "internal: "+err.Error())
			}
		}
		out[i] = o
	}
	return out, nil
}

// testEntities reads a test's entities: a list, or a file named relative
// to the test file.
func (r *Runner) testEntities(file string, i int, raw json.RawMessage) (cedar.EntityMap, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var name string
	if json.Unmarshal(raw, &name) == nil {
		p := filepath.Join(filepath.Dir(file), name)
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		return r.set.ParseEntities(p, b)
	}
	return r.set.ParseEntities(fmt.Sprintf("%s (test %d entities)", file, i+1), raw)
}

// ---- Warden's HTTP form ----

// HTTPTest is one test in Warden's HTTP form: a request as a client sends
// it to Envoy, and what Envoy should do with it.
type HTTPTest struct {
	Name   string `yaml:"name"`
	Method string `yaml:"method"` // default GET
	// URL is absolute (http://host/path?query), or a path, which goes to
	// http://localhost.
	URL     string            `yaml:"url"`
	Headers map[string]string `yaml:"headers"`
	// TokenClaims, when set, become a bearer token (unless headers has an
	// authorization). iss defaults to the first configured issuer (else the
	// dev issuer), aud to that issuer's first audience, iat and nbf to the
	// test's time, and exp to an hour after it. exp, iat, nbf and auth_time
	// may be durations from the test's time ("-5m": an expired token).
	TokenClaims map[string]any `yaml:"token_claims"`
	// Peer is the mTLS peer's SPIFFE ID (Envoy's source.principal).
	Peer              string            `yaml:"peer"`
	SourceIP          string            `yaml:"source_ip"`
	ContextExtensions map[string]string `yaml:"context_extensions"`
	Body              string            `yaml:"body"`
	// Time is when the request is made (RFC 3339); default now.
	Time time.Time `yaml:"time"`

	// Decision is the expected answer: allow or deny (required).
	Decision string `yaml:"decision"`
	// Status is the expected HTTP status (Envoy's answer; 200 for allow).
	Status int `yaml:"status"`
	// Reasons are the expected determining policy ids ([] for none).
	Reasons *[]string `yaml:"reasons"`
	// Reason is the expected decision reason (policy_allow, policy_deny,
	// token_invalid, rate_limited, anonymous_deny, step_up, ...).
	Reason string `yaml:"reason"`
}

func (r *Runner) runHTTP(ctx context.Context, file string, b []byte) ([]Outcome, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, config.FileError(file, err)
	}
	var tests []HTTPTest
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&tests); err != nil {
		return nil, config.FileError(file, err)
	}
	lines := make([]int, len(tests))
	if len(root.Content) > 0 && root.Content[0].Kind == yaml.SequenceNode {
		for i, n := range root.Content[0].Content {
			lines[i] = n.Line
		}
	}
	var errs []error
	for i, t := range tests {
		bad := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("%s:%d: test %d: %s", file, lines[i], i+1, fmt.Sprintf(format, a...)))
		}
		if t.URL == "" {
			bad("url is required")
		}
		if t.Decision != "allow" && t.Decision != "deny" {
			bad("decision %q: want allow or deny", t.Decision)
		}
		if t.Status != 0 && (t.Status < 200 || t.Status > 599) {
			bad("status %d is not an HTTP status", t.Status)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(tests) == 0 {
		return nil, nil
	}

	w, err := r.warden(ctx)
	if err != nil {
		return nil, err
	}
	defer w.close()
	out := make([]Outcome, len(tests))
	for i, t := range tests {
		o := Outcome{File: file, Line: lines[i], Name: t.Name}
		res, ex, err := w.check(ctx, r, t)
		o.Explanation = ex
		if err != nil {
			o.Failures = []string{err.Error()}
			out[i] = o
			continue
		}
		o.Got = fmt.Sprintf("%s %d %s %s", res.Decision, res.Status, res.Reason, list(res.Policies))
		if len(res.Errors) > 0 {
			o.Got += fmt.Sprintf(", errors: %s", strings.Join(res.Errors, "; "))
		}
		if res.Decision != t.Decision {
			o.Failures = append(o.Failures, fmt.Sprintf("decision %s, want %s", res.Decision, t.Decision))
		}
		if t.Status != 0 && res.Status != t.Status {
			o.Failures = append(o.Failures, fmt.Sprintf("status %d, want %d", res.Status, t.Status))
		}
		if t.Reasons != nil && !sameSet(res.Policies, *t.Reasons) {
			o.Failures = append(o.Failures, fmt.Sprintf("reasons %s, want %s", list(res.Policies), list(*t.Reasons)))
		}
		if t.Reason != "" && res.Reason != t.Reason {
			o.Failures = append(o.Failures, fmt.Sprintf("reason %s, want %s", res.Reason, t.Reason))
		}
		out[i] = o
	}
	return out, nil
}

// warden is a Warden for one HTTP test file: the config's identity,
// policies, routes, rate limits and responses, with a memory store and no
// listeners, sinks, tracing or admin API, on a clock each test sets.
type warden struct {
	svc *server.Service
	now atomic.Int64 // unix nanoseconds
}

func (r *Runner) warden(ctx context.Context) (*warden, error) {
	if r.key == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		r.key = k
	}
	cfg := *r.cfg
	cfg.Store.Kind = "memory"
	cfg.DecisionLog.Sinks = nil
	cfg.Tracing.OTLPEndpoint = ""
	cfg.Admin.Addr = "off"
	w := &warden{}
	w.now.Store(time.Now().UnixNano())
	svc, err := server.New(&cfg, server.Options{
		Logger:  slog.New(slog.DiscardHandler),
		Now:     func() time.Time { return time.Unix(0, w.now.Load()) },
		TestKey: r.key,
		Node:    "policy-test",
	})
	if err != nil {
		return nil, err
	}
	w.svc = svc
	return w, nil
}

func (w *warden) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = w.svc.Log.Close(ctx)
}

func (w *warden) check(ctx context.Context, r *Runner, t HTTPTest) (checkreq.Result, *policy.Explanation, error) {
	now := t.Time
	if now.IsZero() {
		now = time.Now()
	}
	w.now.Store(now.UnixNano())
	url := t.URL
	if strings.HasPrefix(url, "/") {
		url = "http://localhost" + url
	}
	var headers []string
	hasAuth := false
	for _, k := range slices.Sorted(maps.Keys(t.Headers)) {
		headers = append(headers, k+": "+t.Headers[k])
		hasAuth = hasAuth || strings.EqualFold(k, "authorization")
	}
	if t.TokenClaims != nil && !hasAuth {
		tok, err := r.token(t.TokenClaims, now)
		if err != nil {
			return checkreq.Result{}, nil, err
		}
		headers = append(headers, "authorization: Bearer "+tok)
	}
	req, err := checkreq.Build(checkreq.HTTP{
		Method: t.Method, URL: url, Headers: headers, Body: t.Body, SourceIP: t.SourceIP,
		PeerPrincipal: t.Peer, ContextExtensions: t.ContextExtensions, Time: now,
	})
	if err != nil {
		return checkreq.Result{}, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out := w.svc.Authorizer.Evaluate(ctx, req)
	var ex *policy.Explanation
	if r.Explain && out.Request != nil && out.Result != nil {
		ex = w.svc.Policies.Current().Explain(out.Request)
		if err := ex.Agrees(*out.Result); err != nil {
			return checkreq.Describe(out.Response), ex, fmt.Errorf("internal: %v", err)
		}
	}
	return checkreq.Describe(out.Response), ex, nil
}

// token signs claims (with the defaults HTTPTest.TokenClaims describes)
// with the run's key.
func (r *Runner) token(claims map[string]any, now time.Time) (string, error) {
	c := maps.Clone(claims)
	issuers := r.cfg.Identity.Issuers
	if r.cfg.Identity.DevIssuer.Enabled {
		issuers = append(slices.Clone(issuers), identity.DevIssuer())
	}
	iss, _ := c["iss"].(string)
	var ic *identity.IssuerConfig
	for i := range issuers {
		if iss == "" || issuers[i].Issuer == iss {
			ic = &issuers[i]
			break
		}
	}
	typ := "at+jwt"
	switch {
	case ic != nil:
		c["iss"] = ic.Issuer
		if _, ok := c["aud"]; !ok && len(ic.Audiences) > 0 {
			c["aud"] = ic.Audiences[0]
		}
		if ic.RequireTyp != "" {
			typ = ic.RequireTyp
		}
	case iss == "":
		return "", errors.New("token_claims: the config trusts no issuer (identity.issuers, identity.dev_issuer)")
	}
	for k, def := range map[string]time.Duration{"iat": 0, "nbf": 0, "exp": time.Hour, "auth_time": -1} {
		v, ok := c[k]
		if !ok {
			if def >= 0 {
				c[k] = now.Add(def).Unix()
			}
			continue
		}
		if s, isStr := v.(string); isStr {
			d, err := time.ParseDuration(s)
			if err != nil {
				return "", fmt.Errorf("token_claims.%s: %q: want a number (seconds since 1970) or a duration from the test's time", k, s)
			}
			c[k] = now.Add(d).Unix()
		}
		if t, isTime := v.(time.Time); isTime {
			c[k] = t.Unix()
		}
	}
	return identity.SignStatic(r.key, typ, c)
}

func sameSet(got, want []string) bool {
	a, b := slices.Clone(got), slices.Clone(want)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func list(ids []string) string {
	return "[" + strings.Join(ids, ", ") + "]"
}
