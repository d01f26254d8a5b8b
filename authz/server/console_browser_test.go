package server_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/internal/testlog"
)

// chromiumPath is the Chromium the browser tests drive: they skip without
// one, and fail with WARDEN_REQUIRE_CHROMIUM=1 (go tool task test installs
// it with .ci/install-chromium and sets that).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, n := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("WARDEN_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("chromium is not installed (WARDEN_REQUIRE_CHROMIUM=1): run bash .ci/install-chromium")
	}
	t.Skip("chromium is not installed: run bash .ci/install-chromium (go tool task test does) to run the console's browser tests")
	return ""
}

// artifacts is where a test's screenshots go: $WARDEN_ARTIFACTS/console
// (go tool task test: .task/artifacts/console), else the test's temp dir.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if a := os.Getenv("WARDEN_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, "console")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser starts a private headless Chromium (its own temporary profile);
// it is stopped, and only it, when the test ends. Every step of the test
// runs within the returned context's deadline.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)), chromedp.NoSandbox, chromedp.WindowSize(1100, 760),
		chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() {
		cancelTime()
		cancelCtx()
		cancelAlloc() // stops the Chromium this test started
	})
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1100, 760)); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// shot saves a PNG of the page as dir/name.png, and in docs/console when
// WARDEN_CONSOLE_DOCS=1 (the README's screenshots).
func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Error(err)
	}
	if os.Getenv("WARDEN_CONSOLE_DOCS") == "1" {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "console", name+".png"), png, 0o644); err != nil {
			t.Error(err)
		}
	}
}

// must runs steps, or fails the test with a screenshot and the status line.
func must(t *testing.T, ctx context.Context, dir, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		status, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.Evaluate[string](`(document.querySelector('#status')||{}).textContent||''`))
		shot(t, context.WithoutCancel(ctx), dir, "failed-"+strings.ReplaceAll(what, " ", "-"))
		t.Fatalf("%s: %v (status line: %q)", what, err, status)
	}
}

func poll(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))(ctx, tg)
		return chromedp.Void{}, err
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// loggedID is the decision id of principal's newest record, once the
// decision log (written off the hot path) has it.
func loggedID(t *testing.T, e *env, principal string) string {
	t.Helper()
	for range 500 {
		recs, _, err := e.svc.Logs.Query(context.Background(), decisionlog.Filter{Principal: principal}, 1, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 1 {
			return recs[0].DecisionID
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no record of %s", principal)
	return ""
}

const consoleToken = "console-token-0123456789abcdef"

// TestConsoleBrowser drives the console in headless Chromium against a
// real Warden: an unauthenticated visitor sees nothing; after signing in
// (the token kept in session storage, in no URL or cookie) the live view
// shows a decision made during the test, the explain page shows its
// deciding policy with its source and the --explain text, and the revoke
// form takes effect on the next Check. Screenshots of every page are
// saved as artifacts.
func TestConsoleBrowser(t *testing.T) {
	dir := artifacts(t)
	ctx := browser(t)
	testlog.Secret(t, consoleToken)
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte(consoleToken+" *\n"+readerToken+" QueryDecisions,ListRevocations,PolicyStatus\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := start(t, func(c *config.Config) {
		c.Admin.TokenFile = tokens
		c.Admin.Console = true
		c.DecisionLog.Replayable = true
	})
	base := "http://" + e.admin
	alice, mallory := e.token(t, "alice", "staff"), e.token(t, "mallory")
	if r := e.reason(t, mallory); r != "policy_deny" {
		t.Fatalf("mallory: %s", r)
	}

	t.Run("unauthenticated visitor sees nothing", func(t *testing.T) {
		must(t, ctx, dir, "open live", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#signin")))
		html := eval[string](t, ctx, `document.documentElement.outerHTML`)
		if strings.Contains(html, "mallory") || strings.Contains(html, "policy_deny:") || !eval[bool](t, ctx, `document.querySelector('#app').hidden`) {
			t.Errorf("the signed-out page shows data:\n%s", html)
		}
		for _, p := range []string{"live", "explain?id=0123456789abcdef0123456789abcdef", "policies", "review", "revocations"} {
			code := eval[int](t, ctx, `fetch('/console/api/`+p+`').then(r => r.status)`)
			if code != 401 {
				t.Errorf("api/%s without a token: %d", p, code)
			}
		}
		shot(t, ctx, dir, "signin")
	})

	t.Run("sign in", func(t *testing.T) {
		must(t, ctx, dir, "sign in", chromedp.SendKeys(chromedp.CSS("#token"), consoleToken+kb.Enter),
			chromedp.WaitVisible(chromedp.CSS("#app")), poll(`document.querySelector('#status').textContent === 'live'`))
		if got := eval[string](t, ctx, `sessionStorage.getItem('warden-admin-token')`); got != consoleToken {
			t.Errorf("session storage holds %q", got)
		}
		if c := eval[string](t, ctx, `document.cookie`); c != "" {
			t.Errorf("cookie %q", c)
		}
		if u := eval[string](t, ctx, `location.href + ' ' + performance.getEntries().map(e => e.name).join(' ')`); strings.Contains(u, consoleToken) {
			t.Errorf("the token is in a URL: %s", u)
		}
		if who := eval[string](t, ctx, `document.querySelector('#who').textContent`); !strings.Contains(who, "token:tokens:1") {
			t.Errorf("who: %q", who)
		}
	})

	var allowID string
	t.Run("live view shows a decision made now", func(t *testing.T) {
		if r := e.reason(t, alice); r != "policy_allow" {
			t.Fatalf("alice: %s", r)
		}
		allowID = loggedID(t, e, `User::"corp|alice"`)
		must(t, ctx, dir, "live row", poll(`document.querySelector('#rows').textContent.includes('`+allowID+`')`),
			poll(`document.querySelector('#counts').textContent.includes('policy_allow: 1')`))
		row := eval[string](t, ctx, `[...document.querySelectorAll('#rows tr')].find(r => r.textContent.includes('`+allowID+`')).textContent`)
		for _, want := range []string{"allow", "200", "policy_allow", `User::"corp|alice"`, "test"} {
			if !strings.Contains(row, want) {
				t.Errorf("row %q lacks %q", row, want)
			}
		}
		shot(t, ctx, dir, "live")

		// Pause, decide, resume: the decision made while paused shows.
		must(t, ctx, dir, "pause", chromedp.Click(chromedp.CSS("#pause")), poll(`document.querySelector('#status').textContent === 'paused'`))
		if got := eval[string](t, ctx, `document.querySelector('#pause').getAttribute('aria-pressed')`); got != "true" {
			t.Errorf("pause button aria-pressed %q", got)
		}
		if r := e.reason(t, mallory); r != "policy_deny" {
			t.Fatalf("mallory: %s", r)
		}
		must(t, ctx, dir, "resume", chromedp.Click(chromedp.CSS("#pause")), poll(`document.querySelector('#rows').querySelectorAll('tr').length === 3`))

		// A filter: only denies.
		must(t, ctx, dir, "filter", chromedp.SetValue(chromedp.CSS("#f-decision"), "deny"), chromedp.Click(chromedp.CSS("#controls button[type=submit]")),
			poll(`document.querySelector('#status').textContent === 'live' && document.querySelectorAll('#rows tr').length === 2`))
		if rows := eval[string](t, ctx, `document.querySelector('#rows').textContent`); strings.Contains(rows, "policy_allow") || !strings.Contains(rows, "policy_deny") {
			t.Errorf("deny filter shows %q", rows)
		}
		if q := eval[string](t, ctx, `location.search`); q != "?decision=deny" {
			t.Errorf("filters in the address: %q", q)
		}
	})

	t.Run("explain shows the deciding policy", func(t *testing.T) {
		must(t, ctx, dir, "explain", chromedp.Navigate(base+"/console/explain?id="+allowID), chromedp.WaitVisible(chromedp.CSS("#deciding")))
		dec := eval[string](t, ctx, `document.querySelector('#deciding').textContent`)
		for _, want := range []string{"staff-read", "permit", "policies/api.cedar:3", `permit (principal in Group::"corp|staff", action in Action::"read", resource);`} {
			if !strings.Contains(dec, want) {
				t.Errorf("deciding policies %q lack %q", dec, want)
			}
		}
		recs, _, _ := e.svc.Logs.Query(context.Background(), decisionlog.Filter{DecisionID: allowID}, 1, "")
		ex, err := e.svc.Policies.Current().ExplainLogged(recs[0].Cedar)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		want.WriteString("explanation:\n")
		ex.WriteText(&want, "  ")
		if got := eval[string](t, ctx, `document.querySelector('#explanation').textContent`); got != want.String() {
			t.Errorf("explanation:\n%s\nwant:\n%s", got, want.String())
		}
		page := eval[string](t, ctx, `document.querySelector('#view').textContent`)
		for _, want := range []string{`User::"corp|alice"`, `Group::"corp|staff"`, "GET", "Context"} {
			if !strings.Contains(page, want) {
				t.Errorf("explain page lacks %q", want)
			}
		}
		if strings.Contains(page, alice) {
			t.Error("the explain page shows the token")
		}
		shot(t, ctx, dir, "explain")
	})

	t.Run("policies", func(t *testing.T) {
		must(t, ctx, dir, "policies", chromedp.Navigate(base+"/console/policies"), chromedp.WaitVisible(chromedp.CSS("#policy-table")))
		row := eval[string](t, ctx, `[...document.querySelectorAll('#policy-table tr')].find(r => r.textContent.includes('staff-read')).textContent`)
		if !strings.Contains(row, "policies/api.cedar:3") || !strings.Contains(row, "1") {
			t.Errorf("staff-read row %q", row)
		}
		if u := eval[string](t, ctx, `document.querySelector('#unused').textContent`); !strings.Contains(u, "admins-all") || strings.Contains(u, "staff-read") {
			t.Errorf("never used: %q", u)
		}
		shot(t, ctx, dir, "policies")
		// "decisions of staff-read" opens the live view filtered by it.
		href := eval[string](t, ctx, `[...document.querySelectorAll('#policy-table a')].find(a => a.textContent.includes('staff-read')).getAttribute('href')`)
		must(t, ctx, dir, "policy link", chromedp.Navigate(base+href),
			poll(`location.pathname === '/console/live' && document.querySelector('#f-policy').value === 'staff-read'`))
		if q := eval[string](t, ctx, `location.search`); !strings.Contains(q, "since=1h0m0s") {
			t.Errorf("the policy link's query %q lost the window", q)
		}
	})

	t.Run("access review", func(t *testing.T) {
		must(t, ctx, dir, "review", chromedp.Navigate(base+"/console/review"), chromedp.WaitVisible(chromedp.CSS("svg.chart")))
		if s := eval[string](t, ctx, `document.querySelector('#review-principals').textContent`); !strings.Contains(s, `User::"corp|alice"`) {
			t.Errorf("review: %q", s)
		}
		shot(t, ctx, dir, "review")
	})

	t.Run("another site cannot revoke", func(t *testing.T) {
		// A page on another origin posts the revoke form to the console,
		// as a form and as a fetch with the console's header.
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%[1]s/console/api/revoke">
<input name="kind" value="jti"><input name="value" value="jti-alice"></form>
<p id="out"></p>
<script>
fetch('%[1]s/console/api/revoke', {method: 'POST', mode: 'no-cors', credentials: 'include',
  headers: {'X-Warden-Console': '1', 'Content-Type': 'application/x-www-form-urlencoded'}, body: 'kind=jti&value=jti-alice'})
  .finally(() => { document.getElementById('out').textContent = 'sent'; document.getElementById('f').submit(); });
</script>`, base)
		}))
		defer evil.Close()
		must(t, ctx, dir, "evil page", chromedp.Navigate(evil.URL))
		body := ""
		for range 200 { // the form navigates: read the answer once there
			b, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href.includes('/console/api/revoke') && document.readyState === 'complete' ? document.body.textContent : ''`))
			if body = b; err == nil && b != "" {
				break
			}
			time.Sleep(25 * time.Millisecond)
		}
		if !strings.Contains(body, "cross-origin request refused") {
			t.Errorf("the cross-site form's answer: %q", body)
		}
		if r := e.reason(t, alice); r != "policy_allow" {
			t.Errorf("alice after another site's revoke: %s", r)
		}
	})

	t.Run("revoke takes effect on the next Check", func(t *testing.T) {
		if r := e.reason(t, alice); r != "policy_allow" {
			t.Fatalf("alice before: %s", r)
		}
		must(t, ctx, dir, "revoke", chromedp.Navigate(base+"/console/revocations"), chromedp.WaitVisible(chromedp.CSS("#revoke-form")),
			chromedp.SendKeys(chromedp.CSS("#r-value"), "jti-alice"), chromedp.Click(chromedp.CSS("#revoke-form button[type=submit]")),
			chromedp.WaitVisible(chromedp.CSS("#revoke-message")))
		if r := e.reason(t, alice); r != "token_revoked" {
			t.Errorf("alice after the revoke: %s", r)
		}
		if s := eval[string](t, ctx, `document.querySelector('#revocation-table').textContent`); !strings.Contains(s, "jti-alice") {
			t.Errorf("list: %q", s)
		}
		shot(t, ctx, dir, "revocations")
	})

	t.Run("a token without the grant cannot revoke", func(t *testing.T) {
		must(t, ctx, dir, "reader", chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem('warden-admin-token', '`+readerToken+`')`),
			chromedp.Navigate(base+"/console/revocations"), chromedp.WaitVisible(chromedp.CSS("#revocation-table")))
		if n := eval[int](t, ctx, `document.querySelectorAll('#revoke-form').length`); n != 0 {
			t.Error("the form is offered to a reader")
		}
		code := eval[int](t, ctx, `fetch('/console/api/revoke', {method: 'POST', headers: {'Authorization': 'Bearer `+readerToken+`', 'X-Warden-Console': '1', 'Content-Type': 'application/x-www-form-urlencoded'}, body: 'kind=jti&value=jti-mallory'}).then(r => r.status)`)
		if code != 403 {
			t.Errorf("reader revoke: %d", code)
		}
		// jti-alice is listed (revoked above), with no unrevoke form for a
		// reader, whose unrevoke is refused.
		if s := eval[string](t, ctx, `document.querySelector('#revocation-table').textContent`); !strings.Contains(s, "jti-alice") {
			t.Errorf("reader's list: %q", s)
		}
		if n := eval[int](t, ctx, `document.querySelectorAll('.unrevoke-form').length`); n != 0 {
			t.Error("an unrevoke form is offered to a reader")
		}
		code = eval[int](t, ctx, `fetch('/console/api/unrevoke', {method: 'POST', headers: {'Authorization': 'Bearer `+readerToken+`', 'X-Warden-Console': '1', 'Content-Type': 'application/x-www-form-urlencoded'}, body: 'kind=jti&id=jti-alice'}).then(r => r.status)`)
		if code != 403 {
			t.Errorf("reader unrevoke: %d", code)
		}
		if r := e.reason(t, alice); r != "token_revoked" {
			t.Errorf("alice after the reader's unrevoke: %s", r)
		}
		must(t, ctx, dir, "back", chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem('warden-admin-token', '`+consoleToken+`')`))
	})

	t.Run("unrevoke takes effect on the next Check", func(t *testing.T) {
		must(t, ctx, dir, "unrevoke", chromedp.Navigate(base+"/console/revocations"),
			chromedp.WaitVisible(chromedp.CSS(`#revocation-table button[aria-label="Unrevoke jti jti-alice"]`)),
			chromedp.Click(chromedp.CSS(`#revocation-table button[aria-label="Unrevoke jti jti-alice"]`)),
			chromedp.WaitVisible(chromedp.CSS("#revoke-message")))
		if s := eval[string](t, ctx, `document.querySelector('#revoke-message').textContent`); s != "unrevoked jti jti-alice" {
			t.Errorf("message: %q", s)
		}
		if r := e.reason(t, alice); r != "policy_allow" {
			t.Errorf("alice after the unrevoke: %s", r)
		}
		if s := eval[string](t, ctx, `document.querySelector('#revocation-table').textContent`); strings.Contains(s, "jti-alice") {
			t.Errorf("list after the unrevoke: %q", s)
		}
	})
}

// TestConsoleAccessibility: on every page, every input has a label, the
// keyboard reaches every control in order, and every text colour of the
// palette has a contrast of at least 4.5:1 on its background (WCAG AA),
// computed from the colours the browser renders.
func TestConsoleAccessibility(t *testing.T) {
	dir := artifacts(t)
	ctx := browser(t)
	testlog.Secret(t, consoleToken)
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte(consoleToken+" *\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := start(t, func(c *config.Config) {
		c.Admin.TokenFile = tokens
		c.Admin.Console = true
		c.DecisionLog.Replayable = true
	})
	base := "http://" + e.admin
	if r := e.reason(t, e.token(t, "alice", "staff")); r != "policy_allow" {
		t.Fatal(r)
	}
	if r := e.reason(t, e.token(t, "mallory")); r != "policy_deny" {
		t.Fatal(r)
	}
	must(t, ctx, dir, "open", chromedp.Navigate(base+"/console/live"), chromedp.WaitVisible(chromedp.CSS("#token")))
	checkPage(t, ctx, "signin")
	must(t, ctx, dir, "sign in", chromedp.SendKeys(chromedp.CSS("#token"), consoleToken+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("#app")))
	for _, p := range []struct{ path, ready string }{
		{"live", "#rows tr"}, {"explain", "#f-id"}, {"policies", "#policy-table"}, {"review", "#review-principals"}, {"revocations", "#revoke-form"},
	} {
		must(t, ctx, dir, p.path, chromedp.Navigate(base+"/console/"+p.path), chromedp.WaitVisible(chromedp.CSS(p.ready)))
		checkPage(t, ctx, p.path)
	}
}

// checkPage checks the page's labels, keyboard order and contrast.
func checkPage(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	unlabeled := eval[[]string](t, ctx, `[...document.querySelectorAll('input, select, textarea')]
		.filter(el => el.offsetParent !== null && el.labels.length === 0 && !el.getAttribute('aria-label'))
		.map(el => el.id || el.name || el.outerHTML)`)
	if len(unlabeled) > 0 {
		t.Errorf("%s: inputs without a label: %v", page, unlabeled)
	}
	// Tab from the first link of the navigation: every visible control of the page's forms is
	// reached, in document order.
	controls := eval[[]string](t, ctx, `[...document.querySelectorAll('main input, main select, main button')]
		.filter(el => el.offsetParent !== null).map(el => el.id || el.textContent.trim())`)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('header nav a').focus(); window.scrollTo(0,0)`)); err != nil {
		t.Fatal(err)
	}
	var reached []string
	for i := 0; i < 60 && len(reached) < len(controls); i++ {
		if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Tab)); err != nil {
			t.Fatal(err)
		}
		id := eval[string](t, ctx, `(el => el.closest('main') ? (el.id || el.textContent.trim()) : '')(document.activeElement)`)
		if id != "" {
			reached = append(reached, id)
		}
	}
	if strings.Join(reached, ",") != strings.Join(controls, ",") {
		t.Errorf("%s: Tab reaches %v, want %v", page, reached, controls)
	}
	// Contrast of every element with its own text.
	pairs := eval[[][3]string](t, ctx, `(() => {
		const bg = el => { for (; el; el = el.parentElement) { const c = getComputedStyle(el).backgroundColor; if (c && c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') return c; } return 'rgb(255, 255, 255)'; };
		const out = [];
		for (const el of document.querySelectorAll('body *')) {
			if (el.offsetParent === null && getComputedStyle(el).position !== 'fixed') continue;
			if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
			if (el.closest('svg') || el.classList.contains('sr')) continue;
			out.push([el.tagName + (el.id ? '#' + el.id : '') + (el.className && typeof el.className === 'string' ? '.' + el.className : ''), getComputedStyle(el).color, bg(el)]);
		}
		return out;
	})()`)
	if len(pairs) < 5 {
		t.Errorf("%s: only %d text elements", page, len(pairs))
	}
	for _, p := range pairs {
		r := contrast(t, p[1], p[2])
		if r < 4.5 {
			t.Errorf("%s: %s: %s on %s has contrast %.2f, want >= 4.5", page, p[0], p[1], p[2], r)
		}
	}
}

// contrast is the WCAG contrast ratio of two CSS rgb() colours.
func contrast(t *testing.T, a, b string) float64 {
	la, lb := luminance(t, a), luminance(t, b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

func luminance(t *testing.T, c string) float64 {
	t.Helper()
	s := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(c, "rgba("), "rgb("), ")")
	parts := strings.Split(s, ",")
	if len(parts) < 3 {
		t.Fatalf("colour %q", c)
	}
	if len(parts) == 4 {
		if a, _ := strconv.ParseFloat(strings.TrimSpace(parts[3]), 64); a < 1 {
			t.Errorf("translucent text colour %q: contrast not computable", c)
		}
	}
	var v [3]float64
	for i := range 3 {
		n, err := strconv.ParseFloat(strings.TrimSpace(parts[i]), 64)
		if err != nil {
			t.Fatalf("colour %q: %v", c, err)
		}
		x := n / 255
		if x <= 0.04045 {
			v[i] = x / 12.92
		} else {
			v[i] = math.Pow((x+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*v[0] + 0.7152*v[1] + 0.0722*v[2]
}

func TestConsoleContrastFormula(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want float64
	}{{"rgb(0, 0, 0)", "rgb(255, 255, 255)", 21}, {"rgb(119, 119, 119)", "rgb(255, 255, 255)", 4.48}, {"rgb(255, 255, 255)", "rgb(255, 255, 255)", 1}} {
		if got := contrast(t, tc.a, tc.b); math.Abs(got-tc.want) > 0.01 {
			t.Errorf("%s on %s: %.3f, want %.2f", tc.a, tc.b, got, tc.want)
		}
	}
}
