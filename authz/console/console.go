// Package console serves Warden's web console on the admin listener
// (admin.console): live decisions, the explanation of one, the policies in
// service with their use, the access review and the revocations. Pages are
// rendered by html/template from embedded assets (no build step, no CDN).
//
// Every page's HTML is a shell without data: the data comes from
// /console/api/..., which authenticates each request as the admin API does
// (a bearer token in the Authorization header, which the page keeps in
// session storage and sends with fetch, or a client certificate) and
// grants each view by the admin method it needs. Mutations need the Revoke
// grant, a same-origin request (Sec-Fetch-Site / Origin) and the
// X-Warden-Console header, so no other site can make a browser post them.
package console

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/wardenauthz/warden/authz/admin"
	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/internal/ratelog"
	"github.com/wardenauthz/warden/policy"
)

//go:embed assets templates
var files embed.FS

// Source is what the console reads of the decision log (decisionlog.LogSource:
// the admin API's source).
type Source interface {
	Query(ctx context.Context, f decisionlog.Filter, limit int, cursor string) ([]*decisionlog.Record, string, error)
	Kind() string
	Close() error
}

// Authenticator identifies an HTTP caller as the admin API does
// (*admin.Guard).
type Authenticator interface {
	AuthenticateHTTP(r *http.Request) (admin.HTTPCaller, int, error)
}

// Options are the console's dependencies.
type Options struct {
	Auth     Authenticator
	Logs     Source
	Admin    *admin.Service // revocations go through the admin API's own checks
	Policies *policy.Engine
	Now      func() time.Time
	Logger   *slog.Logger
	// Poll is how often the live view asks the log for new records
	// (default 1s).
	Poll time.Duration
	// MaxStreams bounds the live views open at once (default 8); MaxStream
	// bounds how long one stays open (default 10 minutes: the page
	// reconnects).
	MaxStreams int
	MaxStream  time.Duration
	// MaxStreamsPerCaller bounds the live views one caller holds open
	// (default 2).
	MaxStreamsPerCaller int
	// MaxHeavy bounds the window views (policies, review) computed at once
	// (default 2), one per caller; others are answered 503 with
	// Retry-After.
	MaxHeavy int
	// MaxScan bounds the records one window view reads (default MaxScan);
	// ScanTimeout bounds its time (default 20s).
	MaxScan     int
	ScanTimeout time.Duration
	// Hosts are the Host header values served besides loopback IP
	// literals and localhost (with or without a port): the admin
	// listener's configured names. A request naming any other host is
	// refused (DNS rebinding).
	Hosts []string
	// Authorized, when set, is told of every request whose caller
	// authenticated and holds the grant it needs (the admin listener then
	// keeps its connection open), with the caller's name; it returns a
	// function called when the request has been answered. A request
	// refused (401, 403) and one for the shell or an asset is not told.
	Authorized func(r *http.Request, who string) (done func())
}

// Bounds of what a caller can make the console read.
const (
	// MaxScan is the most records a window (policies, review, counts)
	// reads, by default.
	MaxScan = 20000
	// MaxRows bounds the rows a view renders (principals, groups).
	MaxRows = 200
	// MaxWindow is the longest window a page may ask for.
	MaxWindow = 31 * 24 * time.Hour
	// maxQuery bounds a request's query string and form body.
	maxQuery = 4 << 10
	// pollPage is the most records one poll of the live view sends.
	pollPage = 200
	// CountsWindow is the live view's "last minutes" for counts per reason.
	CountsWindow = 5 * time.Minute
)

// Console is the console's http.Handler.
type Console struct {
	o       Options
	mux     *http.ServeMux
	pages   *template.Template
	streams *admin.Slots // live views
	heavy   *admin.Slots // window views
	csrf    *http.CrossOriginProtection
	// refused logs unauthenticated calls, once a minute at most.
	refused *slog.Logger
}

// Pages are the console's pages, in navigation order.
var Pages = []struct{ Path, Title string }{
	{"live", "Live decisions"},
	{"explain", "Explain"},
	{"policies", "Policies"},
	{"review", "Access review"},
	{"revocations", "Revocations"},
}

// New builds the console.
func New(o Options) (*Console, error) {
	if o.Auth == nil || o.Logs == nil || o.Admin == nil || o.Policies == nil {
		return nil, errors.New("console: Auth, Logs, Admin and Policies are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = 8
	}
	if o.MaxStream <= 0 {
		o.MaxStream = 10 * time.Minute
	}
	if o.MaxStreamsPerCaller <= 0 {
		o.MaxStreamsPerCaller = 2
	}
	if o.MaxHeavy <= 0 {
		o.MaxHeavy = 2
	}
	if o.MaxScan <= 0 {
		o.MaxScan = MaxScan
	}
	if o.ScanTimeout <= 0 {
		o.ScanTimeout = 20 * time.Second
	}
	t, err := template.New("").Funcs(funcs).ParseFS(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	c := &Console{o: o, mux: http.NewServeMux(), pages: t, csrf: http.NewCrossOriginProtection(),
		streams: admin.NewSlots(o.MaxStreams, o.MaxStreamsPerCaller), heavy: admin.NewSlots(o.MaxHeavy, 1),
		refused: slog.New(ratelog.New(o.Logger.Handler(), slog.LevelWarn, time.Minute, o.Now))}
	assets, _ := fs.Sub(files, "assets")
	static := http.FileServerFS(assets)
	c.mux.Handle("GET /console/assets/", http.StripPrefix("/console/assets/", static))
	c.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/live", http.StatusSeeOther)
	})
	c.mux.HandleFunc("GET /console/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/live", http.StatusSeeOther)
	})
	c.mux.HandleFunc("GET /console/{page}", c.shell)
	c.mux.HandleFunc("GET /console/api/whoami", c.api("", c.whoami))
	c.mux.HandleFunc("GET /console/api/live", c.api("QueryDecisions", c.live))
	c.mux.HandleFunc("GET /console/api/explain", c.api("QueryDecisions", c.explain))
	c.mux.HandleFunc("GET /console/api/policies", c.api("PolicyStatus", c.policies))
	c.mux.HandleFunc("GET /console/api/review", c.api("QueryDecisions", c.review))
	c.mux.HandleFunc("GET /console/api/revocations", c.api("ListRevocations", c.revocations))
	c.mux.HandleFunc("POST /console/api/revoke", c.api("Revoke", c.revoke))
	c.mux.HandleFunc("POST /console/api/unrevoke", c.api("Revoke", c.unrevoke)) // Unrevoke needs Revoke (admin.GrantFor)
	return c, nil
}

// CSP is the console's Content-Security-Policy: its own scripts, styles
// and connections only; no inline script or style; never framed.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if r.TLS == nil && !c.hostAllowed(r.Host) { // over TLS, the certificate names the host
		http.Error(w, "unknown Host: open the console by the admin listener's address", http.StatusMisdirectedRequest)
		return
	}
	if len(r.URL.RawQuery) > maxQuery {
		http.Error(w, "query too long", http.StatusRequestURITooLong)
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/console/assets/") {
		h.Set("Cache-Control", "no-store")
	}
	c.mux.ServeHTTP(w, r)
}

// shell serves a page's HTML: navigation, the sign-in form and the page's
// controls, never data.
func (c *Console) shell(w http.ResponseWriter, r *http.Request) {
	page := r.PathValue("page")
	title := ""
	for _, p := range Pages {
		if p.Path == page {
			title = p.Title
		}
	}
	if title == "" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := c.pages.ExecuteTemplate(w, "shell.html", map[string]any{"Page": page, "Title": title, "Pages": Pages, "Reasons": decisionlog.Reasons}); err != nil {
		c.o.Logger.Warn("console: render", "page", page, "err", err)
	}
}

// caller is an authenticated console caller.
type caller = admin.HTTPCaller

// api wraps a data endpoint: the caller must authenticate and hold grant
// ("" for any authenticated caller); a POST must also be same-origin and
// carry X-Warden-Console. Every call is logged as the admin API logs its
// calls ("console call": view, caller, the result's code once the handler
// ran); unauthenticated ones at most once a minute ("console call
// refused"), with a count of those suppressed.
func (c *Console) api(grant string, h func(http.ResponseWriter, *http.Request, caller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		view := strings.TrimPrefix(r.URL.Path, "/console/api/")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := c.csrf.Check(r); err != nil {
				c.refused.Warn("console call refused", "view", view, "remote", r.RemoteAddr, "code", "PermissionDenied", "why", "cross-origin")
				http.Error(w, "cross-origin request refused", http.StatusForbidden)
				return
			}
			if r.Header.Get("X-Warden-Console") != "1" {
				c.refused.Warn("console call refused", "view", view, "remote", r.RemoteAddr, "code", "PermissionDenied", "why", "no X-Warden-Console")
				http.Error(w, "X-Warden-Console: 1 required", http.StatusForbidden)
				return
			}
		}
		who, status, err := c.o.Auth.AuthenticateHTTP(r)
		if err != nil {
			if status == http.StatusUnauthorized {
				c.refused.Warn("console call refused", "view", view, "remote", r.RemoteAddr, "code", "Unauthenticated")
				w.Header().Set("WWW-Authenticate", `Bearer realm="warden-admin"`)
			} else {
				c.o.Logger.Info("console call", "view", view, "caller", who.Who, "code", codeOf(status, nil))
			}
			http.Error(w, "console: "+err.Error(), status)
			return
		}
		if grant != "" && !who.May(grant) {
			c.o.Logger.Info("console call", "view", view, "caller", who.Who, "code", "PermissionDenied")
			http.Error(w, "console: "+who.Who+" may not call "+grant, http.StatusForbidden)
			return
		}
		if c.o.Authorized != nil {
			defer c.o.Authorized(r, who.Who)()
		}
		aw := &auditWriter{ResponseWriter: w}
		h(aw, r, who)
		attrs := append([]any{"view", view, "caller", who.Who, "code", codeOf(aw.status, aw.err)}, aw.attrs...)
		c.o.Logger.Info("console call", attrs...)
	}
}

// auditWriter records what a handler answered, for the call's log line.
type auditWriter struct {
	http.ResponseWriter
	status int
	err    error // the admin API's error, when the handler called it
	attrs  []any // what the call did (revoke: kind, target)
}

func (a *auditWriter) WriteHeader(code int) {
	if a.status == 0 {
		a.status = code
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *auditWriter) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	return a.ResponseWriter.Write(b)
}

func (a *auditWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// audit adds to the call's log line (w: the handler's writer).
func audit(w http.ResponseWriter, err error, attrs ...any) {
	if a, ok := w.(*auditWriter); ok {
		a.err = cmp.Or(a.err, err)
		a.attrs = append(a.attrs, attrs...)
	}
}

// codeOf names a call's result as the admin API's log does (a gRPC code):
// the admin API's error when there was one, else the HTTP status's.
func codeOf(status int, err error) string {
	if err != nil {
		return grpcstatus.Code(err).String()
	}
	switch {
	case status == 0 || status < 300:
		return codes.OK.String()
	case status == http.StatusBadRequest || status == http.StatusRequestURITooLong:
		return codes.InvalidArgument.String()
	case status == http.StatusUnauthorized:
		return codes.Unauthenticated.String()
	case status == http.StatusForbidden:
		return codes.PermissionDenied.String()
	case status == http.StatusNotFound:
		return codes.NotFound.String()
	case status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests:
		return codes.Unavailable.String()
	default:
		return codes.Unknown.String()
	}
}

// enter takes one of s's slots for who, or answers 503 busy (naming what)
// and reports false.
func enter(s *admin.Slots, w http.ResponseWriter, who, what string) (release func(), ok bool) {
	release, ok = s.Take(who)
	if !ok {
		busy(w, what)
	}
	return release, ok
}

func busy(w http.ResponseWriter, what string) {
	w.Header().Set("Retry-After", "5")
	http.Error(w, "too many "+what+" open (for you or in all); try again shortly", http.StatusServiceUnavailable)
}

// hostAllowed reports whether a request's Host names this console: a
// loopback IP literal, localhost, or one of Options.Hosts (any port).
// Others are a DNS-rebinding page's requests, or a misdirected client.
func (c *Console) hostAllowed(host string) bool {
	h := host
	if sh, _, err := net.SplitHostPort(host); err == nil {
		h = sh
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return true
	}
	for _, a := range c.o.Hosts {
		if strings.EqualFold(a, h) || strings.EqualFold(a, host) {
			return true
		}
	}
	return false
}

// fragment renders template name as the answer.
func (c *Console) fragment(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := c.pages.ExecuteTemplate(w, name, data); err != nil {
		c.o.Logger.Warn("console: render", "fragment", name, "err", err)
	}
}

func (c *Console) whoami(w http.ResponseWriter, _ *http.Request, who caller) {
	c.fragment(w, "whoami", who)
}
