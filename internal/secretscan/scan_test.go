package secretscan

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wardenauthz/warden/internal/credential"
)

// patterns are secrets by shape.
var patterns = map[string]*regexp.Regexp{
	"JWS":         regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.`),
	"private key": regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`),
	"bearer":      regexp.MustCompile(`(?i)\bbearer\s+[A-Za-z0-9._~+/-]{20,}`),
}

// TestSuiteLeaksNoSecrets scans the capture of a whole test run (the
// directory in WARDEN_SECRET_SCAN).
func TestSuiteLeaksNoSecrets(t *testing.T) {
	dir := os.Getenv("WARDEN_SECRET_SCAN")
	if dir == "" {
		t.Skip("WARDEN_SECRET_SCAN is not set: go tool task test runs this after the suite")
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	var secrets []string
	var scanned []string
	for _, f := range files {
		if strings.Contains(filepath.Base(f), ".secrets.") {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, strings.Fields(string(b))...)
		} else {
			scanned = append(scanned, f)
		}
	}
	lines := map[string]int{}
	for _, f := range scanned {
		kind := strings.Split(filepath.Base(f), ".")[1]
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			lines[kind]++
			for name, re := range patterns {
				if m := re.FindString(line); m != "" {
					t.Errorf("%s:%d: a %s: %.24s...", filepath.Base(f), n, name, m)
				}
			}
			if kind == "records" {
				if v, ok := recordParamLeak(line); ok {
					t.Errorf("%s:%d: a credential-named parameter's value or userinfo in a record string: %.60q", filepath.Base(f), n, v)
				}
			}
			for _, s := range secrets {
				if strings.Contains(line, s) {
					t.Errorf("%s:%d: the registered secret %.6s...", filepath.Base(f), n, s)
				}
			}
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	t.Logf("scanned %d files: %v lines by kind; %d registered secrets", len(scanned), lines, len(secrets))
	// A capture that lost its input would pass vacuously.
	if lines["records"] < 1000 || lines["slog"] < 20 || lines["stderr"] < 5 || len(secrets) < 4 {
		t.Errorf("the capture is too small to mean anything: %v lines, %d secrets", lines, len(secrets))
	}
}

// recordParamLeak finds, in a decision record (a JSON line), a string
// holding the value of a credential-named parameter or URL userinfo the
// parameters model would redact (credential.RedactParams), or a host
// (a member named *host*) holding userinfo (credential.RedactHost): every
// record string went through them, so none should. A marker cut short at the end of
// a string (a record cut to fit) is read whole.
func recordParamLeak(line string) (string, bool) {
	var v any
	if json.Unmarshal([]byte(line), &v) != nil {
		return "", false
	}
	var found string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			s := x
			for i := len(credential.Redacted) - 1; i > 0; i-- {
				if strings.HasSuffix(s, credential.Redacted[:i]) {
					s += credential.Redacted[i:]
					break
				}
			}
			if _, hit := credential.RedactParams(s); hit && found == "" {
				found = x
			}
		case map[string]any:
			for k, e := range x {
				walk(k)
				walk(e)
				if h, ok := e.(string); ok && strings.Contains(k, "host") && found == "" {
					if _, hit := credential.RedactHost(h); hit {
						found = h
					}
				}
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return found, found != ""
}

// TestRecordParamLeak: the records' parameter scan finds a kept value and
// userinfo, not their redacted or cut forms.
func TestRecordParamLeak(t *testing.T) {
	for _, tc := range []struct {
		line string
		want bool
	}{
		{`{"cedar":{"context":{"request":{"headers":{"referer":"https://app/cb?code=Splx"}}}}}`, true},
		{`{"request":{"host":"user:pw@orders"}}`, true},
		{`{"request":{"host":"[REDACTED]@orders"}}`, false},
		{`{"request":{"path":"/x","request_id":"a?access_token=01234567"}}`, true},
		{`{"headers":{"location":"https://svc:pw@api/v1"}}`, true},
		{`{"cedar":{"context":{"request":{"headers":{"referer":"https://app/cb?code=[REDACTED]"}}}}}`, false},
		{`{"detail":"https://app/cb?code=[REDA"}`, false},
		{`{"headers":{"location":"https://[REDACTED]@api/v1"}}`, false},
		{`{"policies":["p1"],"request":{"path":"/orders/1?page=2"}}`, false},
	} {
		if _, got := recordParamLeak(tc.line); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.line, got, tc.want)
		}
	}
}

// TestPatterns: the scan finds what it is meant to find.
func TestPatterns(t *testing.T) {
	for _, tc := range []struct {
		line string
		want bool
	}{
		{`{"token":{"iss":"https://idp","jti":"j1"}}`, false},
		{`WWW-Authenticate: Bearer realm="warden"`, false},
		{`Bearer error="invalid_token", error_description="token expired"`, false},
		{`"authorization":"Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.sig"`, true},
		{`eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.`, true},
		{`authorization: bearer 0123456789abcdefghijklmnop`, true},
		{`-----BEGIN RSA PRIVATE KEY-----`, true},
	} {
		got := false
		for _, re := range patterns {
			got = got || re.MatchString(tc.line)
		}
		if got != tc.want {
			t.Errorf("%q: got %v, want %v", tc.line, got, tc.want)
		}
	}
}
