package secretscan

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
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
