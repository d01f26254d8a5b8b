package authzen_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/internal/testlog"
)

// The example's tokens (examples/authzen/authzen-tokens).
const (
	pepToken      = "demo-authzen-pep-token-change-me"      // Evaluate,Search
	operatorToken = "demo-authzen-operator-token-change-me" // *
)

const exampleConfig = "../../examples/authzen/warden.yaml"

// pdp is a Warden serving the AuthZEN API on a loopback listener.
type pdp struct {
	base    string
	svc     *server.Service
	records *testlog.Buffer
	stop    func() // stops serving and flushes the decision log
}

// startPDP serves cfgFile's AuthZEN API on 127.0.0.1:0 (after mutate).
func startPDP(t testing.TB, cfgFile string, mutate ...func(*config.Config)) *pdp {
	t.Helper()
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	return startPDPConfig(t, cfg, mutate...)
}

// exampleWith is the example config edited by the old, new string pairs,
// its relative paths resolved against the example's directory.
func exampleWith(t testing.TB, oldnew ...string) *config.Config {
	t.Helper()
	b, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(filepath.Dir(exampleConfig))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for i := 0; i+1 < len(oldnew); i += 2 {
		if !strings.Contains(text, oldnew[i]) {
			t.Fatalf("the example has no %q", oldnew[i])
		}
		text = strings.Replace(text, oldnew[i], oldnew[i+1], 1)
	}
	cfg, err := config.Parse(exampleConfig, []byte(text), abs)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startPDPConfig(t testing.TB, cfg *config.Config, mutate ...func(*config.Config)) *pdp {
	t.Helper()
	cfg.Server.AuthZENAddr = "127.0.0.1:0"
	for _, m := range mutate {
		m(cfg)
	}
	recs := &testlog.Buffer{}
	svc, err := server.New(cfg, server.Options{
		Logger: testlog.Logger(t, nil), Stdout: testlog.Writer(t, "records", recs), Node: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.ServeAuthZEN(ctx, lis) }()
	p := &pdp{base: "http://" + lis.Addr().String(), svc: svc, records: recs}
	var once sync.Once
	p.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
			sctx, c2 := context.WithTimeout(context.Background(), 5*time.Second)
			defer c2()
			_ = svc.Log.Close(sctx)
		})
	}
	t.Cleanup(p.stop)
	return p
}

// post sends body to path with the token (none when ""), returning the
// status and body.
func (p *pdp) post(t testing.TB, token, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(http.MethodPost, p.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

var client = &http.Client{Timeout: 10 * time.Second}

func do(t testing.TB, req *http.Request) (int, []byte) {
	t.Helper()
	status, _, b := doHeaders(t, req)
	return status, b
}

// doHeaders sends req and returns the status, headers and body.
func doHeaders(t testing.TB, req *http.Request) (int, http.Header, []byte) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// recordsOf stops p and returns its decision records.
func (p *pdp) recordsOf(t testing.TB) []decisionlog.Record {
	t.Helper()
	p.stop()
	var out []decisionlog.Record
	sc := bufio.NewScanner(strings.NewReader(p.records.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r decisionlog.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("record %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// writeTemp writes files into a temporary directory and returns it.
func writeTemp(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type configT = config.Config
