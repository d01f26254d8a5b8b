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
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/wardenauthz/warden/authz/admin"
	"github.com/wardenauthz/warden/authz/decisionlog"
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
}

// Bounds of what a caller can make the console read.
const (
	// MaxScan is the most records a window (policies, counts) reads.
	MaxScan = 20000
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
	streams chan struct{}
	csrf    *http.CrossOriginProtection
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
	t, err := template.New("").Funcs(funcs).ParseFS(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	c := &Console{o: o, mux: http.NewServeMux(), pages: t, streams: make(chan struct{}, o.MaxStreams), csrf: http.NewCrossOriginProtection()}
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
// carry X-Warden-Console.
func (c *Console) api(grant string, h func(http.ResponseWriter, *http.Request, caller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := c.csrf.Check(r); err != nil {
				http.Error(w, "cross-origin request refused", http.StatusForbidden)
				return
			}
			if r.Header.Get("X-Warden-Console") != "1" {
				http.Error(w, "X-Warden-Console: 1 required", http.StatusForbidden)
				return
			}
		}
		who, status, err := c.o.Auth.AuthenticateHTTP(r)
		if err != nil {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="warden-admin"`)
			}
			http.Error(w, "console: "+err.Error(), status)
			return
		}
		method := strings.TrimPrefix(r.URL.Path, "/console/api/")
		if grant != "" && !who.May(grant) {
			c.o.Logger.Info("console call", "view", method, "caller", who.Who, "code", "PermissionDenied")
			http.Error(w, "console: "+who.Who+" may not call "+grant, http.StatusForbidden)
			return
		}
		if r.Method == http.MethodPost {
			c.o.Logger.Info("console call", "view", method, "caller", who.Who, "code", "OK")
		}
		h(w, r, who)
	}
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
