// Package authzen serves the OpenID AuthZEN Authorization API 1.0 (access
// evaluation, access evaluations, search, and PDP metadata) over Warden's
// policy set: the same engine, index, decision log and metrics as Check.
//
// Mapping to Cedar: the subject is the principal Type::"id", where Type is
// authzen.types[subject.type] (subject.type itself when authzen.types is
// empty); its parents are those entities.json gives that entity, and its
// properties are attributes (the stored ones win). The action is
// Action::"name" (action.properties are not used: Cedar actions carry no
// request attributes). The resource maps like the subject. The context is
// the Cedar context.
package authzen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/cedar-policy/cedar-go"

	"github.com/wardenauthz/warden/authz"
	"github.com/wardenauthz/warden/authz/admin"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/internal/jsonnames"
	"github.com/wardenauthz/warden/internal/token"
	"github.com/wardenauthz/warden/policy"
)

// Paths of the API.
const (
	PathEvaluation     = "/access/v1/evaluation"
	PathEvaluations    = "/access/v1/evaluations"
	PathSearchSubject  = "/access/v1/search/subject"
	PathSearchResource = "/access/v1/search/resource"
	PathSearchAction   = "/access/v1/search/action"
	PathMetadata       = "/.well-known/authzen-configuration"
)

// Grants a caller may hold.
const (
	GrantEvaluate = "Evaluate"
	GrantSearch   = "Search"
	GrantExplain  = "Explain"
)

// Authenticator verifies OIDC access tokens (identity.Authenticator).
type Authenticator interface {
	Authenticate(ctx context.Context, in identity.Input) (identity.Identity, error)
}

// Options configure a Handler.
type Options struct {
	// Authorizer evaluates, logs and counts, as for Check.
	Authorizer *authz.Authorizer
	// Guard authenticates callers by token file and client certificate.
	Guard *admin.Guard
	// Authn and Issuers: an access token of one of these issuers (names of
	// identity.issuers) may call Evaluate and Search.
	Authn   Authenticator
	Issuers []string
	// Types maps AuthZEN types to Cedar entity types; empty: the identity.
	Types map[string]string
	// MaxBodyBytes and MaxEvaluations bound a request.
	MaxBodyBytes   int
	MaxEvaluations int
	// PDP is the policy_decision_point of the metadata ("": from the request).
	PDP    string
	Logger *slog.Logger
}

// Handler serves the API.
type Handler struct {
	o   Options
	mux *http.ServeMux
}

// New builds a Handler.
func New(o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 64 << 10
	}
	if o.MaxEvaluations <= 0 {
		o.MaxEvaluations = 64
	}
	h := &Handler{o: o, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET "+PathMetadata, h.metadata)
	h.mux.HandleFunc("POST "+PathEvaluation, h.guard(GrantEvaluate, h.evaluation))
	h.mux.HandleFunc("POST "+PathEvaluations, h.guard(GrantEvaluate, h.evaluations))
	h.mux.HandleFunc("POST "+PathSearchSubject, h.guard(GrantSearch, h.search(searchSubject)))
	h.mux.HandleFunc("POST "+PathSearchResource, h.guard(GrantSearch, h.search(searchResource)))
	h.mux.HandleFunc("POST "+PathSearchAction, h.guard(GrantSearch, h.search(searchAction)))
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id := r.Header.Get("X-Request-ID"); id != "" {
		w.Header().Set("X-Request-ID", bound(id, 256))
	}
	h.mux.ServeHTTP(w, r)
}

// call is one authenticated API call.
type call struct {
	who     string
	explain bool
	reqID   string
	source  string
	path    string
	held    int // the body's bytes (what a record's Cedar section may reference)
	// the last principal's string form (a batch's items share a subject)
	lastPrincipal    cedar.EntityUID
	lastPrincipalStr string
}

func (c *call) principalString(uid cedar.EntityUID) string {
	if c.lastPrincipalStr == "" || uid != c.lastPrincipal {
		c.lastPrincipal, c.lastPrincipalStr = uid, uid.String()
	}
	return c.lastPrincipalStr
}

// fail writes the spec's error answer: the status and a message string.
func fail(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = fmt.Fprintln(w, msg)
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fail(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
}

// guard authenticates the caller, checks its grant, and reads the body
// (bounded, I-JSON checked) before next runs.
func (h *Handler) guard(grant string, next func(http.ResponseWriter, *call, []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, status, msg := h.authenticate(r, grant)
		if status != 0 {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="warden-authzen"`)
			}
			h.o.Logger.Info("authzen call refused", "path", r.URL.Path, "caller", c.who, "status", status)
			fail(w, status, msg)
			return
		}
		if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
			fail(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
			return
		}
		body, err := readBody(w, r, h.o.MaxBodyBytes)
		if err != nil {
			var mb *http.MaxBytesError
			if errors.As(err, &mb) {
				fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is over the limit of %d bytes", h.o.MaxBodyBytes))
				return
			}
			fail(w, http.StatusBadRequest, "the body could not be read")
			return
		}
		if err := checkIJSON(body); err != nil {
			fail(w, http.StatusBadRequest, err.Error())
			return
		}
		c.reqID = bound(r.Header.Get("X-Request-ID"), 256)
		c.held = len(body)
		c.path = r.URL.Path
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			c.source = host
		}
		next(w, &c, body)
	}
}

func readBody(w http.ResponseWriter, r *http.Request, limit int) ([]byte, error) {
	if r.ContentLength > int64(limit) {
		return nil, &http.MaxBytesError{Limit: int64(limit)}
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, int64(limit)))
}

func isJSON(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

// authenticate identifies the caller and checks it holds grant. status is
// 0 when it may go on; otherwise msg is safe to show it.
func (h *Handler) authenticate(r *http.Request, grant string) (call, int, string) {
	if h.o.Guard != nil {
		hc, status, err := h.o.Guard.AuthenticateHTTP(r)
		switch {
		case err == nil:
			if !hc.May(grant) {
				return call{who: hc.Who}, http.StatusForbidden, fmt.Sprintf("%s may not call %s", hc.Who, grant)
			}
			return call{who: hc.Who, explain: hc.May(GrantExplain)}, 0, ""
		case !errors.Is(err, admin.ErrUnknownToken) || len(h.o.Issuers) == 0:
			return call{who: hc.Who}, status, "AuthZEN API: " + err.Error()
		}
	}
	if len(h.o.Issuers) == 0 || h.o.Authn == nil {
		return call{}, http.StatusUnauthorized, "AuthZEN API: send a bearer token, or a client certificate"
	}
	auth := r.Header.Values("Authorization")
	if len(auth) != 1 || !strings.HasPrefix(strings.ToLower(auth[0]), "bearer ") {
		return call{}, http.StatusUnauthorized, "AuthZEN API: bearer token required"
	}
	id, err := h.o.Authn.Authenticate(r.Context(), identity.Input{Authorization: identity.Credential(auth[0])})
	if err != nil {
		if identity.IsUnavailable(err) {
			return call{}, http.StatusServiceUnavailable, "AuthZEN API: " + identity.Unavailable(err) + " unavailable"
		}
		return call{}, http.StatusUnauthorized, "AuthZEN API: invalid or unknown token"
	}
	if id.Token == nil || !contains(h.o.Issuers, id.Token.Issuer) {
		return call{who: id.ID}, http.StatusUnauthorized, "AuthZEN API: the token's issuer is not in authzen.issuers"
	}
	if grant != GrantEvaluate && grant != GrantSearch {
		return call{who: id.ID}, http.StatusForbidden, fmt.Sprintf("%s may not call %s", id.ID, grant)
	}
	return call{who: id.ID}, 0, ""
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// bound cuts s to at most n bytes (a caller's header in a record).
func bound(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Request bodies, as decoded. Pointers tell absent from present.
type entityJSON struct {
	Type       *string        `json:"type"`
	ID         *string        `json:"id"`
	Properties map[string]any `json:"properties"`
}

type actionJSON struct {
	Name       *string        `json:"name"`
	Properties map[string]any `json:"properties"`
}

type evalJSON struct {
	Subject  *entityJSON    `json:"subject"`
	Action   *actionJSON    `json:"action"`
	Resource *entityJSON    `json:"resource"`
	Context  map[string]any `json:"context"`
}

type evalsJSON struct {
	evalJSON
	Evaluations []json.RawMessage `json:"evaluations"`
	Options     map[string]any    `json:"options"`
}

// Decision is an answer of the API.
type Decision struct {
	Decision bool           `json:"decision"`
	Context  map[string]any `json:"context,omitempty"`
}

// errBad is a request error: HTTP 400 with its message.
type errBad struct{ msg string }

func (e errBad) Error() string { return e.msg }

func bad(format string, args ...any) error { return errBad{fmt.Sprintf(format, args...)} }

// decode decodes a checked body into v, numbers as json.Number.
func decode(b []byte, v any, prefix string) error {
	if err := jsonnames.Exact(b, reflect.TypeOf(v), prefix); err != nil {
		return bad("%v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		msg := describe(err)
		if prefix != "" && !strings.HasPrefix(msg, "the body") {
			msg = prefix + "." + msg
		} else if prefix != "" {
			msg = prefix + ": must be an object"
		}
		return errBad{msg}
	}
	return nil
}

// required checks the members the spec requires, naming the first missing.
func (e *evalJSON) required(prefix string) error {
	p := func(s string) string {
		if prefix == "" {
			return s
		}
		return prefix + "." + s
	}
	switch {
	case e.Subject == nil:
		return bad("%s: missing (an object with type and id)", p("subject"))
	case e.Subject.Type == nil:
		return bad("%s: missing", p("subject.type"))
	case e.Subject.ID == nil:
		return bad("%s: missing", p("subject.id"))
	case e.Action == nil:
		return bad("%s: missing (an object with name)", p("action"))
	case e.Action.Name == nil:
		return bad("%s: missing", p("action.name"))
	case e.Resource == nil:
		return bad("%s: missing (an object with type and id)", p("resource"))
	case e.Resource.Type == nil:
		return bad("%s: missing", p("resource.type"))
	case e.Resource.ID == nil:
		return bad("%s: missing", p("resource.id"))
	case *e.Subject.Type == "":
		return bad("%s: must not be empty", p("subject.type"))
	case *e.Resource.Type == "":
		return bad("%s: must not be empty", p("resource.type"))
	case *e.Action.Name == "":
		return bad("%s: must not be empty", p("action.name"))
	}
	return nil
}

// cedarType maps an AuthZEN type to a Cedar entity type.
func (h *Handler) cedarType(member, t string) (cedar.EntityType, error) {
	if len(h.o.Types) > 0 {
		ct, ok := h.o.Types[t]
		if !ok {
			return "", bad("%s: %q is not a type of authzen.types", member, t)
		}
		return cedar.EntityType(ct), nil
	}
	if !config.ValidCedarType(t) {
		return "", bad("%s: %q is not a Cedar entity type (and authzen.types maps none)", member, t)
	}
	return cedar.EntityType(t), nil
}

func record(m map[string]any) cedar.Record {
	if len(m) == 0 {
		return cedar.Record{}
	}
	v, ok := token.ClaimValue(m, 0)
	if !ok {
		return cedar.Record{}
	}
	rec, _ := v.(cedar.Record)
	return rec
}

// toCedar maps a complete evaluation to a Cedar request.
func (h *Handler) toCedar(e *evalJSON, prefix string) (*policy.EvalRequest, error) {
	p := func(s string) string {
		if prefix == "" {
			return s
		}
		return prefix + "." + s
	}
	st, err := h.cedarType(p("subject.type"), *e.Subject.Type)
	if err != nil {
		return nil, err
	}
	rt, err := h.cedarType(p("resource.type"), *e.Resource.Type)
	if err != nil {
		return nil, err
	}
	return &policy.EvalRequest{
		Principal: policy.EvalEntity{UID: cedar.NewEntityUID(st, cedar.String(*e.Subject.ID)), Attrs: record(e.Subject.Properties)},
		Action:    cedar.NewEntityUID("Action", cedar.String(*e.Action.Name)),
		Resource:  policy.EvalEntity{UID: cedar.NewEntityUID(rt, cedar.String(*e.Resource.ID)), Attrs: record(e.Resource.Properties)},
		Context:   record(e.Context),
	}, nil
}

// decide evaluates one request against set, logs and counts it, and
// returns the API's answer.
func (h *Handler) decide(set *policy.Set, c *call, req *policy.EvalRequest) Decision {
	start := time.Now()
	a := h.o.Authorizer
	rec := &decisionlog.Record{
		Time: a.Now(), DecisionID: authz.NewDecisionID(), Node: a.Node(), Transport: authz.TransportAuthZEN, Caller: c.who,
		Request: decisionlog.RecordRequest{Method: http.MethodPost, Path: c.path, SourceIP: c.source, RequestID: c.reqID},
	}
	var res policy.Result
	func() {
		defer func() {
			if p := recover(); p != nil {
				h.o.Logger.Error("panic in AuthZEN evaluation; denying", "panic", fmt.Sprint(p), "decision_id", rec.DecisionID)
				res = policy.Result{Principal: req.Principal.UID, Action: req.Action, Resource: req.Resource.UID}
				rec.Reason, rec.Detail = decisionlog.ReasonUnavailable, "internal error"
			}
		}()
		res = set.Evaluate(req)
	}()
	rec.Principal, rec.Action, rec.Resource = c.principalString(res.Principal), set.UIDString(res.Action), res.Resource.String()
	rec.Policies, rec.Errors, rec.Cedar = res.Reasons, res.Errors, res.Logged
	if rec.Policies == nil {
		rec.Policies = []string{}
	}
	d := Decision{Decision: res.Allow && rec.Reason == ""}
	switch {
	case rec.Reason != "":
		rec.Decision, rec.Status = decisionlog.Deny, http.StatusServiceUnavailable
	case d.Decision:
		rec.Decision, rec.Status, rec.Reason = decisionlog.Allow, http.StatusOK, decisionlog.ReasonPolicyAllow
	case res.PolicyError:
		rec.Decision, rec.Status, rec.Reason, rec.Detail = decisionlog.Deny, http.StatusForbidden, decisionlog.ReasonPolicyError, "access denied: a policy could not be evaluated"
	default:
		rec.Decision, rec.Status, rec.Reason, rec.Detail = decisionlog.Deny, http.StatusForbidden, decisionlog.ReasonPolicyDeny, "access denied by policy"
	}
	if c.explain {
		d.Context = map[string]any{"decision_id": rec.DecisionID, "policies": rec.Policies}
		if !d.Decision {
			d.Context["reason"] = string(rec.Reason)
			if len(rec.Policies) == 0 && rec.Reason == decisionlog.ReasonPolicyDeny {
				d.Context["reason_admin"] = map[string]string{"403": "no policy permits the request"}
			} else if rec.Reason == decisionlog.ReasonPolicyDeny {
				d.Context["reason_admin"] = map[string]string{"403": "forbidden by policy " + strings.Join(rec.Policies, ", ")}
			} else {
				d.Context["reason_admin"] = map[string]string{"403": rec.Detail}
			}
		}
	}
	a.Finish(rec, time.Since(start), c.held)
	return d
}

func (h *Handler) evaluation(w http.ResponseWriter, c *call, body []byte) {
	var e evalJSON
	if err := decode(body, &e, ""); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := e.required(""); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	req, err := h.toCedar(&e, "")
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, h.decide(h.o.Authorizer.PolicySet(), c, req))
}

// Semantics of an evaluations batch.
const (
	ExecuteAll          = "execute_all"
	DenyOnFirstDeny     = "deny_on_first_deny"
	PermitOnFirstPermit = "permit_on_first_permit"
)

func (h *Handler) evaluations(w http.ResponseWriter, c *call, body []byte) {
	var b evalsJSON
	if err := decode(body, &b, ""); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	semantic := ExecuteAll
	if v, ok := b.Options["evaluations_semantic"]; ok {
		s, _ := v.(string)
		switch s {
		case ExecuteAll, DenyOnFirstDeny, PermitOnFirstPermit:
			semantic = s
		default:
			fail(w, http.StatusBadRequest, fmt.Sprintf("options.evaluations_semantic: must be %s, %s or %s", ExecuteAll, DenyOnFirstDeny, PermitOnFirstPermit))
			return
		}
	}
	set := h.o.Authorizer.PolicySet()
	if len(b.Evaluations) == 0 { // the single evaluation, as the spec says
		if err := b.required(""); err != nil {
			fail(w, http.StatusBadRequest, err.Error())
			return
		}
		req, err := h.toCedar(&b.evalJSON, "")
		if err != nil {
			fail(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, h.decide(set, c, req))
		return
	}
	if len(b.Evaluations) > h.o.MaxEvaluations {
		fail(w, http.StatusBadRequest, fmt.Sprintf("evaluations: %d items, over the limit of %d", len(b.Evaluations), h.o.MaxEvaluations))
		return
	}
	// Every item is decoded and checked before any is evaluated: a
	// malformed batch is refused whole. All items are decoded at once;
	// when that fails, item by item, to name the one at fault.
	items := make([]evalJSON, len(b.Evaluations))
	var all struct {
		Evaluations []evalJSON `json:"evaluations"`
	}
	whole := decode(body, &all, "") == nil && len(all.Evaluations) == len(items)
	for i, raw := range b.Evaluations {
		prefix := fmt.Sprintf("evaluations[%d]", i)
		var it evalJSON
		if whole {
			it = all.Evaluations[i]
		} else if err := decode(raw, &it, prefix); err != nil {
			fail(w, http.StatusBadRequest, err.Error())
			return
		}
		if it.Subject == nil {
			it.Subject = b.Subject
		}
		if it.Action == nil {
			it.Action = b.Action
		}
		if it.Resource == nil {
			it.Resource = b.Resource
		}
		if it.Context == nil {
			it.Context = b.Context
		}
		if err := it.required(prefix); err != nil {
			fail(w, http.StatusBadRequest, err.Error()+" (nor given at the top level)")
			return
		}
		items[i] = it
	}
	out := make([]Decision, 0, len(items))
	for i := range items {
		req, err := h.toCedar(&items[i], fmt.Sprintf("evaluations[%d]", i))
		var d Decision
		if err != nil {
			d = Decision{Context: map[string]any{"error": map[string]any{"status": http.StatusBadRequest, "message": err.Error()}}}
		} else {
			d = h.decide(set, c, req)
		}
		out = append(out, d)
		if (semantic == DenyOnFirstDeny && !d.Decision) || (semantic == PermitOnFirstPermit && d.Decision) {
			break
		}
	}
	writeJSON(w, struct {
		Evaluations []Decision `json:"evaluations"`
	}{out})
}

// metadata is the PDP metadata: public, as the spec's discovery is.
func (h *Handler) metadata(w http.ResponseWriter, r *http.Request) {
	base := h.o.PDP
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	base = strings.TrimSuffix(base, "/")
	writeJSON(w, map[string]any{
		"policy_decision_point":       base,
		"access_evaluation_endpoint":  base + PathEvaluation,
		"access_evaluations_endpoint": base + PathEvaluations,
		"search_subject_endpoint":     base + PathSearchSubject,
		"search_resource_endpoint":    base + PathSearchResource,
		"search_action_endpoint":      base + PathSearchAction,
	})
}
