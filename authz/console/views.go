package console

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cedar-policy/cedar-go/types"

	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/authz/review"
	"github.com/wardenauthz/warden/policy"
	adminv1 "github.com/wardenauthz/warden/proto/warden/admin/v1"
)

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05.000Z")
	},
	"join": strings.Join,
	// link is path with the query kv (key, value, ...), each encoded as
	// a query component: a URL safe as an href (html/template escapes
	// it once more as an attribute, never as one parameter).
	"link": func(path string, kv ...string) template.URL {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return template.URL((&url.URL{Path: path, RawQuery: v.Encode()}).String())
	},
}

// window reads a duration parameter: def when absent, else between a
// minute and MaxWindow.
func window(q url.Values, key string, def time.Duration) (time.Duration, error) {
	s := q.Get(key)
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Minute || d > MaxWindow {
		return 0, fmt.Errorf("%s: %q: want a duration from 1m to %s, e.g. 15m or 24h", key, s, MaxWindow)
	}
	return d, nil
}

// filterOf reads the live view's filters (the admin API's), checked.
func filterOf(q url.Values) (decisionlog.Filter, error) {
	f := decisionlog.Filter{Decision: q.Get("decision"), Reason: decisionlog.Reason(q.Get("reason")), Principal: q.Get("principal"),
		Action: q.Get("action"), Node: q.Get("node"), Policy: q.Get("policy"), Resource: q.Get("resource")}
	var errs []error
	if s := q.Get("status"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("status: %q: want an HTTP status such as 403", s))
		}
		f.Status = n
	}
	f, err := f.Check()
	return f, errors.Join(append(errs, err)...)
}

func badRequest(w http.ResponseWriter, err error) {
	http.Error(w, err.Error(), http.StatusBadRequest)
}

// scan calls fn for each record matching f, in one pass over the window
// (decisionlog.ScanRaw: the file and stream sources read it once, never
// page by page), reading at most Options.MaxScan records and for at most
// Options.ScanTimeout; it reports whether it stopped at the record bound.
func (c *Console) scan(ctx context.Context, f decisionlog.Filter, fn func(*decisionlog.Record)) (capped bool, err error) {
	src := &boundedSource{LogSource: c.o.Logs, max: c.o.MaxScan}
	ctx, cancel := context.WithTimeout(ctx, c.o.ScanTimeout)
	defer cancel()
	err = src.ScanRaw(ctx, f.Since, func(line []byte) error {
		var rec decisionlog.Record
		if json.Unmarshal(line, &rec) == nil && rec.DecisionID != "" && f.Match(&rec) {
			fn(&rec)
		}
		return nil
	})
	return src.Capped(), err
}

// boundedSource is a log source whose ScanRaw stops, without error, after max
// records (it counts what it read in Read).
type boundedSource struct {
	decisionlog.LogSource
	max  int
	Read int
}

var errCapped = errors.New("record bound reached")

// ScanRaw implements decisionlog.RawScanner over the source's own.
func (s *boundedSource) ScanRaw(ctx context.Context, since time.Time, fn func(line []byte) error) error {
	err := decisionlog.ScanRaw(ctx, s.LogSource, since, func(line []byte) error {
		if s.Read >= s.max {
			return errCapped
		}
		s.Read++
		return fn(line)
	})
	if errors.Is(err, errCapped) {
		return nil
	}
	return err
}

// Capped reports whether ScanRaw stopped at the bound.
func (s *boundedSource) Capped() bool { return s.Read >= s.max }

// event is a live decision as the page draws it.
type event struct {
	Time       time.Time `json:"time"`
	DecisionID string    `json:"decision_id"`
	Decision   string    `json:"decision"`
	Status     int       `json:"status"`
	Reason     string    `json:"reason"`
	Principal  string    `json:"principal"`
	Action     string    `json:"action"`
	Resource   string    `json:"resource"`
	Method     string    `json:"method"`
	Path       string    `json:"path"`
	Node       string    `json:"node"`
}

func eventOf(r *decisionlog.Record) event {
	return event{Time: r.Time, DecisionID: r.DecisionID, Decision: string(r.Decision), Status: r.Status, Reason: string(r.Reason),
		Principal: r.Principal, Action: r.Action, Resource: r.Resource, Method: r.Request.Method, Path: r.Request.Path, Node: r.Node}
}

// live streams matching decisions as server-sent events: "decision" for
// each record (the recent ones first), "counts" with the matching records
// per reason over the last CountsWindow, "dropped" when a poll found more
// than it sends. The page reads it with fetch (the token goes in a
// header, never in the URL); it ends after MaxStream.
func (c *Console) live(w http.ResponseWriter, r *http.Request, who caller) {
	q := r.URL.Query()
	f, err := filterOf(q)
	if err != nil {
		badRequest(w, err)
		return
	}
	back, err := window(q, "since", CountsWindow)
	if err != nil {
		badRequest(w, err)
		return
	}
	if r.Method == http.MethodHead { // no stream for a HEAD
		w.Header().Set("Content-Type", "text/event-stream")
		return
	}
	release, ok := enter(c.streams, w, who.Who, "live views")
	if !ok {
		return
	}
	defer release()
	ctx, cancel := context.WithTimeout(r.Context(), c.o.MaxStream)
	defer cancel()
	rc := http.NewResponseController(w)
	// The server's read timeout would end the stream: the request is read.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(name string, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if fl, ok := c.o.Logs.(decisionlog.Follower); ok {
		c.follow(ctx, fl, f, back, send)
		return
	}
	now := c.o.Now()
	last := now.Add(-back)
	seen := map[string]bool{}
	poll := func(first bool) bool {
		pf := f
		pf.Since = last
		recs, _, err := c.o.Logs.Query(ctx, pf, pollPage, "")
		if err != nil {
			return send("error", err.Error())
		}
		var fresh []*decisionlog.Record
		for _, rec := range recs {
			if !seen[rec.DecisionID] {
				fresh = append(fresh, rec)
			}
		}
		if len(recs) == pollPage && !first {
			if !send("dropped", "more decisions than the view shows: narrow the filters") {
				return false
			}
		}
		slices.Reverse(fresh) // oldest first
		for _, rec := range fresh {
			if rec.Time.After(last) {
				last = rec.Time
				clear(seen)
			}
			if !rec.Time.Before(last) {
				seen[rec.DecisionID] = true
			}
			if !send("decision", eventOf(rec)) {
				return false
			}
		}
		return true
	}
	counts := func() bool {
		cf := f
		cf.Since = c.o.Now().Add(-CountsWindow)
		n := map[string]int{}
		capped, err := c.scan(ctx, cf, func(rec *decisionlog.Record) { n[string(rec.Reason)]++ })
		if err != nil {
			return send("error", err.Error())
		}
		return send("counts", map[string]any{"window": CountsWindow.String(), "reasons": n, "capped": capped})
	}
	if !poll(true) || !counts() {
		return
	}
	t := time.NewTicker(c.o.Poll)
	defer t.Stop()
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			send("end", "reconnect")
			return
		case <-t.C:
		}
		if !poll(false) {
			return
		}
		if i%5 == 0 && !counts() {
			return
		}
	}
}

// follow is the live view over a source that can follow (the file and
// Redis stream sources): one bounded pass over the window (MaxScan records,
// ScanTimeout, as the window views) for the recent records and the counts,
// then only the records appended since, as the source reports them
// (fsnotify for a file: no rereading of the file per poll). The counts are
// kept from those records, never by reading the window again. Only the
// in-memory ring, cheap to ask, is polled.
func (c *Console) follow(ctx context.Context, src decisionlog.Follower, f decisionlog.Filter, back time.Duration, send func(string, any) bool) {
	// Following starts before the first pass, so a record written during
	// it is not missed; one seen by both is sent once (by id).
	news := make(chan *decisionlog.Record, pollPage)
	var dropped atomic.Bool
	fctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	var ferr error
	go func() {
		defer close(done)
		ferr = src.Follow(fctx, f, func(r *decisionlog.Record) {
			select {
			case news <- r:
			default:
				dropped.Store(true)
			}
		})
	}()
	defer func() { stop(); <-done }()

	now := c.o.Now()
	from := now.Add(-max(back, CountsWindow))
	sf := f
	sf.Since = from
	var recent []*decisionlog.Record
	type counted struct {
		t      time.Time
		reason string
	}
	var window []counted // the counted records, oldest first
	capped, err := c.scan(ctx, sf, func(rec *decisionlog.Record) {
		if !rec.Time.Before(now.Add(-back)) {
			if len(recent) == pollPage {
				recent = recent[1:]
			}
			recent = append(recent, rec)
		}
		if !rec.Time.Before(now.Add(-CountsWindow)) {
			window = append(window, counted{rec.Time, string(rec.Reason)})
		}
	})
	if err != nil {
		send("error", err.Error())
		return
	}
	if capped && !send("dropped", fmt.Sprintf("the window holds more than %d records: the view shows the first it read; narrow the window or the filters", c.o.MaxScan)) {
		return
	}
	first := make(map[string]bool, len(recent))
	for _, rec := range recent {
		first[rec.DecisionID] = true
		if !send("decision", eventOf(rec)) {
			return
		}
	}
	counts := func() bool {
		cut := c.o.Now().Add(-CountsWindow)
		i := 0
		for i < len(window) && window[i].t.Before(cut) {
			i++
		}
		window = window[i:]
		n := map[string]int{}
		for _, w := range window {
			n[w.reason]++
		}
		return send("counts", map[string]any{"window": CountsWindow.String(), "reasons": n, "capped": capped})
	}
	if !counts() {
		return
	}
	t := time.NewTicker(c.o.Poll)
	defer t.Stop()
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			send("end", "reconnect")
			return
		case <-done:
			if ferr != nil && ctx.Err() == nil {
				send("error", ferr.Error())
			}
			return
		case <-t.C:
		}
		for more := true; more; {
			select {
			case rec := <-news:
				if first[rec.DecisionID] {
					continue
				}
				if len(window) < c.o.MaxScan {
					window = append(window, counted{rec.Time, string(rec.Reason)})
				} else {
					capped = true
				}
				if !send("decision", eventOf(rec)) {
					return
				}
			default:
				more = false
			}
		}
		if dropped.Swap(false) && !send("dropped", "more decisions than the view shows: narrow the filters") {
			return
		}
		if i%5 == 0 && !counts() {
			return
		}
	}
}

// policyRef is a policy of the set in service.
type policyRef struct {
	policy.PolicyInfo
	Effect string
}

func effect(p policy.PolicyInfo) string {
	if p.Forbid {
		return "forbid"
	}
	return "permit"
}

// explainView is the explain page's data.
type explainView struct {
	ID          string
	Record      *decisionlog.Record
	Cedar       *policy.Logged
	Parents     []string // the principal's parents, as logged
	Context     string
	Deciding    []policyRef
	Erroring    []erroring
	Explanation string
	Note        string
}

type erroring struct {
	Error  string
	Policy *policyRef
}

// explain shows one decision: what the log holds of it, the policies that
// decided or errored with their text and place, and the explanation
// `warden check --explain` prints, for the set in service now.
func (c *Console) explain(w http.ResponseWriter, r *http.Request, who caller) {
	id := strings.TrimSpace(r.URL.Query().Get("id"))
	v := explainView{ID: id}
	if id == "" {
		c.fragment(w, "explain", v)
		return
	}
	f, err := decisionlog.Filter{DecisionID: id, Since: c.o.Now().Add(-MaxWindow)}.Check()
	if err != nil {
		badRequest(w, err)
		return
	}
	// A file source reads the whole window to find one id: a window view.
	release, ok := enter(c.heavy, w, who.Who, "window views")
	if !ok {
		return
	}
	defer release()
	// The same bounded pass as the window views: MaxScan records,
	// ScanTimeout.
	var rec *decisionlog.Record
	capped, err := c.scan(r.Context(), f, func(r *decisionlog.Record) {
		if rec == nil {
			rec = r
		}
	})
	if err != nil {
		scanFailed(w, c.o.Logs.Kind(), err)
		return
	}
	if rec == nil {
		w.WriteHeader(http.StatusNotFound)
		v.Note = fmt.Sprintf("no decision %s in the decision log (%s) of the last %s", f.DecisionID, c.o.Logs.Kind(), MaxWindow)
		if capped {
			v.Note = fmt.Sprintf("decision %s not found within the %d records read of the decision log (%s) of the last %s: the bound of one view was reached", f.DecisionID, c.o.MaxScan, c.o.Logs.Kind(), MaxWindow)
		}
		c.fragment(w, "explain", v)
		return
	}
	v.Record, v.Cedar = rec, rec.Cedar
	if rec.Cedar != nil {
		for _, p := range rec.Cedar.Parents {
			v.Parents = append(v.Parents, types.EntityUID(p).String())
		}
	}
	set := c.o.Policies.Current()
	byID := map[string]policyRef{}
	for _, p := range set.Policies() {
		byID[p.ID] = policyRef{p, effect(p)}
	}
	for _, id := range rec.Policies {
		p, ok := byID[id]
		if !ok {
			p = policyRef{policy.PolicyInfo{ID: id, Position: "not in the set in service now"}, ""}
		}
		v.Deciding = append(v.Deciding, p)
	}
	for _, e := range rec.Errors {
		er := erroring{Error: e}
		if id, _, ok := strings.Cut(e, ": "); ok {
			if p, ok := byID[id]; ok {
				er.Policy = &p
			}
		}
		v.Erroring = append(v.Erroring, er)
	}
	var text bytes.Buffer
	text.WriteString("explanation:\n")
	switch {
	case rec.Cedar != nil:
		b, _ := json.MarshalIndent(rec.Cedar.Context, "", "  ")
		v.Context = string(b)
		ex, err := set.ExplainLogged(rec.Cedar)
		if err != nil {
			v.Note = "cannot explain: " + err.Error()
			break
		}
		ex.WriteText(&text, "  ")
		if ex.Decision != rec.Cedar.Decision {
			v.Note = fmt.Sprintf("the set in service now decides %s where it decided %s: the policies changed since", ex.Decision, rec.Cedar.Decision)
		} else if string(rec.Reason) != ex.Reason && ex.Reason != "" {
			fmt.Fprintf(&text, "  then:       %s %d %s\n", rec.Decision, rec.Status, rec.Reason)
		}
		v.Explanation = text.String()
	case rec.Reason == decisionlog.ReasonPolicyAllow || strings.HasPrefix(string(rec.Reason), "policy_") || rec.Reason == "step_up":
		v.Note = "the record has no Cedar request to explain: set decision_log.replayable: true to keep it"
	default:
		fmt.Fprintf(&text, "  decided before any policy: %s (%d)\n", rec.Reason, rec.Status)
		v.Explanation = text.String()
	}
	c.fragment(w, "explain", v)
}

// policyUse is a policy with what it decided in the window.
type policyUse struct {
	policyRef
	Allows, Denies int
}

type policiesView struct {
	Loaded, LastTry time.Time
	LastError       string
	Window          string
	Policies        []policyUse
	Unused          []policyUse
	Records         int
	Capped          bool
	MaxScan         int
	Source          string
}

// policies shows the set in service, its load status, and per policy the
// allows and denies it decided over a window (never-used ones apart).
func (c *Console) policies(w http.ResponseWriter, r *http.Request, who caller) {
	win, err := window(r.URL.Query(), "window", time.Hour)
	if err != nil {
		badRequest(w, err)
		return
	}
	loaded, last, lastErr := c.o.Policies.Status()
	v := policiesView{Loaded: loaded, LastTry: last, Window: win.String(), Source: c.o.Logs.Kind(), MaxScan: c.o.MaxScan}
	if lastErr != nil {
		v.LastError = lastErr.Error()
	}
	use := map[string]*policyUse{}
	for _, p := range c.o.Policies.Current().Policies() {
		v.Policies = append(v.Policies, policyUse{policyRef: policyRef{p, effect(p)}})
	}
	for i := range v.Policies {
		use[v.Policies[i].ID] = &v.Policies[i]
	}
	if who.May("QueryDecisions") {
		release, ok := enter(c.heavy, w, who.Who, "window views")
		if !ok {
			return
		}
		defer release()
		v.Capped, err = c.scan(r.Context(), decisionlog.Filter{Since: c.o.Now().Add(-win)}, func(rec *decisionlog.Record) {
			v.Records++
			for _, id := range rec.Policies {
				if u := use[id]; u != nil {
					if rec.Decision == "allow" {
						u.Allows++
					} else {
						u.Denies++
					}
				}
			}
		})
		if err != nil {
			scanFailed(w, c.o.Logs.Kind(), err)
			return
		}
		for _, u := range v.Policies {
			if u.Allows+u.Denies == 0 {
				v.Unused = append(v.Unused, u)
			}
		}
	} else {
		v.Source = ""
	}
	c.fragment(w, "policies", v)
}

// bar is one row of the access review's chart.
type bar struct {
	Label         string
	Used, Granted int
	Y             int
	UsedW, GrantW int
}

type reviewView struct {
	Window           string
	Principal, Group string
	Report           *review.Report
	Bars             []bar
	Height           int
	// Truncated: the review stopped at MaxScan records (Read); Principals
	// and Groups are the counts before MaxRows bounded the rows.
	Truncated          bool
	Read, MaxScan      int
	Principals, Groups int
	RowsCut            bool
	MaxRows            int
}

// chartWidth is the width of the longest bar of the review chart.
const chartWidth = 300

// review runs the access review over a window.
func (c *Console) review(w http.ResponseWriter, r *http.Request, who caller) {
	q := r.URL.Query()
	win, err := window(q, "window", 24*time.Hour)
	if err != nil {
		badRequest(w, err)
		return
	}
	f := review.Filter{Principal: q.Get("principal"), Group: q.Get("group")}
	chk, err := decisionlog.Filter{Principal: f.Principal, Resource: ""}.Check()
	if err != nil {
		badRequest(w, err)
		return
	}
	f.Principal = chk.Principal
	if f.Group != "" {
		if _, err := (decisionlog.Filter{Principal: f.Group}).Check(); err != nil {
			badRequest(w, errors.New(strings.Replace(err.Error(), "principal:", "group:", 1)))
			return
		}
	}
	release, ok := enter(c.heavy, w, who.Who, "window views")
	if !ok {
		return
	}
	defer release()
	ctx, cancel := context.WithTimeout(r.Context(), c.o.ScanTimeout)
	defer cancel()
	src := &boundedSource{LogSource: c.o.Logs, max: c.o.MaxScan}
	rep, err := review.Review(ctx, src, c.o.Now().Add(-win), c.o.Policies.Current(), f)
	if err != nil {
		scanFailed(w, c.o.Logs.Kind(), err)
		return
	}
	v := reviewView{Window: win.String(), Principal: f.Principal, Group: f.Group, Report: rep,
		Truncated: src.Capped(), Read: src.Read, MaxScan: c.o.MaxScan, MaxRows: MaxRows,
		Principals: len(rep.Principals), Groups: len(rep.Groups)}
	// The rows drawn: the principals with the most grants unused first
	// (what a review is for), at most MaxRows of each table.
	slices.SortStableFunc(rep.Principals, func(a, b review.PrincipalReport) int { return cmp.Compare(len(b.Unused), len(a.Unused)) })
	if len(rep.Principals) > MaxRows {
		rep.Principals, v.RowsCut = rep.Principals[:MaxRows], true
	}
	if len(rep.Groups) > MaxRows {
		rep.Groups, v.RowsCut = rep.Groups[:MaxRows], true
	}
	most := 1
	for _, p := range rep.Principals {
		most = max(most, len(p.Granted), len(p.Used))
	}
	for i, p := range rep.Principals {
		if i == 50 {
			break
		}
		b := bar{Label: p.Principal, Used: len(p.Used), Granted: len(p.Granted), Y: 8 + i*28}
		b.GrantW = b.Granted * chartWidth / most
		b.UsedW = b.Used * chartWidth / most
		v.Bars = append(v.Bars, b)
	}
	v.Height = 16 + len(v.Bars)*28
	c.fragment(w, "review", v)
}

// scanFailed answers a window view whose read of the log failed or ran
// out of time.
func scanFailed(w http.ResponseWriter, kind string, err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		err = errors.New("the window took too long to read: choose a shorter one")
	}
	w.Header().Set("Retry-After", "5")
	http.Error(w, fmt.Sprintf("decision log (%s): %v", kind, err), http.StatusServiceUnavailable)
}

// revocationRow is a revocation as listed.
type revocationRow struct {
	Kind, ID      string
	Until, Before time.Time
}

type revocationsView struct {
	Rows    []revocationRow
	Message string
	Error   string
	CanEdit bool
}

func (c *Console) revocationsOf(ctx context.Context, who caller) (revocationsView, error) {
	v := revocationsView{CanEdit: who.May("Revoke")}
	if !who.May("ListRevocations") {
		return v, nil
	}
	out, err := c.o.Admin.ListRevocations(ctx, &adminv1.ListRevocationsRequest{})
	if err != nil {
		return v, err
	}
	for _, rv := range out.GetRevocations() {
		row := revocationRow{Kind: rv.GetKind(), ID: rv.GetId()}
		if rv.Until != nil {
			row.Until = rv.Until.AsTime()
		}
		if rv.Before != nil {
			row.Before = rv.Before.AsTime()
		}
		v.Rows = append(v.Rows, row)
	}
	slices.SortFunc(v.Rows, func(a, b revocationRow) int { return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ID, b.ID)) })
	return v, nil
}

func (c *Console) revocations(w http.ResponseWriter, r *http.Request, who caller) {
	c.answerRevocations(w, r, who, "", "")
}

// answerRevocations answers the revocations list with an edit's outcome:
// msg on success, fail (and 400) when the edit was refused; neither for a
// plain read. A list that cannot be read answers 503.
func (c *Console) answerRevocations(w http.ResponseWriter, r *http.Request, who caller, msg, fail string) {
	v, err := c.revocationsOf(r.Context(), who)
	if err != nil {
		http.Error(w, grpcstatus.Convert(err).Message(), http.StatusServiceUnavailable)
		return
	}
	v.Message, v.Error = msg, fail
	if fail != "" {
		w.WriteHeader(http.StatusBadRequest)
	}
	c.fragment(w, "revocations", v)
}

// parseForm parses a POST's form, its body bounded to maxQuery bytes; on
// failure it has answered 400.
func parseForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxQuery)
	if err := r.ParseForm(); err != nil {
		badRequest(w, errors.New("form: too long or malformed"))
		return false
	}
	return true
}

// looksLikeJWT reports whether v has a compact JWS's shape: three
// base64url segments, the first a JSON header.
func looksLikeJWT(v string) bool {
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return false
	}
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	return err == nil && json.Valid(h)
}

// revoke revokes a token (jti) or a subject through the admin API's
// Revoke, with its checks, and answers the list.
func (c *Console) revoke(w http.ResponseWriter, r *http.Request, who caller) {
	if !parseForm(w, r) {
		return
	}
	kind, value := r.PostForm.Get("kind"), strings.TrimSpace(r.PostForm.Get("value"))
	req := &adminv1.RevokeRequest{}
	switch kind {
	case "jti":
		tok := &adminv1.RevokeRequest_Token{Token: &adminv1.RevokeToken{Jti: value}}
		if s := r.PostForm.Get("expires"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 || d > 365*24*time.Hour {
				badRequest(w, fmt.Errorf("expires: %q: want a duration such as 24h", s))
				return
			}
			tok.Token.Expires = timestamppb.New(c.o.Now().Add(d))
		}
		req.Target = tok
	case "subject":
		req.Target = &adminv1.RevokeRequest_Subject{Subject: &adminv1.RevokeSubject{Subject: value}}
	default:
		badRequest(w, errors.New("kind: want jti or subject"))
		return
	}
	var msg, fail string
	if kind == "jti" && looksLikeJWT(value) {
		// Never a token in a log line or the store: the form wants its jti.
		audit(w, grpcstatus.Error(codes.InvalidArgument, "a token, not a jti"), "kind", kind)
		badRequest(w, errors.New("value: that is a token, not its jti: paste the token's jti claim"))
		return
	}
	if out, err := c.o.Admin.Revoke(r.Context(), req); err != nil {
		fail = grpcstatus.Convert(err).Message()
		audit(w, err, "kind", kind)
	} else {
		msg = "revoked " + kind + " " + value
		// jtis and subjects are not secrets: the log says what was revoked.
		audit(w, nil, "kind", out.GetRevocation().GetKind(), "target", out.GetRevocation().GetId())
	}
	c.answerRevocations(w, r, who, msg, fail)
}

// unrevoke takes back one revocation (kind and id as the list shows them)
// through the admin API's Unrevoke, with its checks, and answers the list.
func (c *Console) unrevoke(w http.ResponseWriter, r *http.Request, who caller) {
	if !parseForm(w, r) {
		return
	}
	kind, id := r.PostForm.Get("kind"), r.PostForm.Get("id")
	var msg, fail string
	if _, err := c.o.Admin.Unrevoke(r.Context(), &adminv1.UnrevokeRequest{Kind: kind, Id: id}); err != nil {
		fail = grpcstatus.Convert(err).Message()
		audit(w, err, "kind", kind)
	} else {
		msg = "unrevoked " + kind + " " + id
		audit(w, nil, "kind", kind, "target", id)
	}
	c.answerRevocations(w, r, who, msg, fail)
}
