package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The benchmark starts its servers by running its own executable with
// -child; under go test that executable is the test binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-child" {
		main()
		return
	}
	os.Exit(m.Run())
}

func quick(mode string) options {
	return options{
		mode: mode, store: "memory", runs: 1, warmup: 200 * time.Millisecond, window: 700 * time.Millisecond,
		conns: 2, conc: 8, policies: 50, users: 3, reloadEvery: 400 * time.Millisecond,
		mix: map[string]int{"reader": 5, "admin": 2, "denied": 2, "anonymous": 1, "expired": 1},
	}
}

// TestLoadSmoke keeps the load benchmark runnable: both servers start, every
// kind of request gets the answer it should (a wrong answer fails the run),
// and the report has the ratio and CPU figures read from /metrics.
func TestLoadSmoke(t *testing.T) {
	o := quick("load")
	o.jsonOut = filepath.Join(t.TempDir(), "out.json")
	var out bytes.Buffer
	if err := run(o, cpus{}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"warden/noop throughput", "CPU above the no-op server", "p99 above the no-op's", "reader 5", "expired 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	b, err := os.ReadFile(o.jsonOut)
	if err != nil {
		t.Fatal(err)
	}
	var res struct{ Results []measure }
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 2 {
		t.Fatalf("results: %+v", res.Results)
	}
	for _, m := range res.Results {
		if m.Calls == 0 || m.CPU <= 0 || m.Allocs <= 0 || m.P99 <= 0 {
			t.Errorf("%s: figures missing: %+v", m.Target, m)
		}
	}
}

// TestInterleavedSmoke: at an offered rate, the targets taking turns in
// slices: each target's figures are over all its slices (about the rate
// over the whole window), and the report says how it was measured.
func TestInterleavedSmoke(t *testing.T) {
	o := quick("load")
	o.rate, o.interleave, o.window = 400, 3, 900*time.Millisecond
	var out bytes.Buffer
	if err := run(o, cpus{}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "take turns in 3 slices of 300ms") {
		t.Errorf("report does not say it interleaved:\n%s", out.String())
	}
	for _, target := range []string{"noop", "warden"} {
		// 3 slices of 300 ms at 400/s: about 360 Checks each.
		re := regexp.MustCompile(`(?m)^1\s+` + target + `\s+(\d+)`)
		m := re.FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("no row for %s:\n%s", target, out.String())
		}
		if rps, _ := strconv.Atoi(m[1]); rps < 300 || rps > 500 {
			t.Errorf("%s: %d req/s over its slices, want about 400:\n%s", target, rps, out.String())
		}
	}
}

// TestReloadSmoke: policies replaced under load; the run fails on any failed
// Check or reload, and on no reload at all.
func TestReloadSmoke(t *testing.T) {
	o := quick("reload")
	o.window = 1500 * time.Millisecond // the watcher waits for 200 ms of quiet before it reloads
	var out bytes.Buffer
	if err := run(o, cpus{}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "reloads") {
		t.Errorf("no reload figures:\n%s", out.String())
	}
}

func TestMemorySmoke(t *testing.T) {
	o := quick("memory")
	o.entities = 100
	var out bytes.Buffer
	if err := run(o, cpus{}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "RSS") {
		t.Errorf("no RSS figure:\n%s", out.String())
	}
}

// The wire reader the load generator uses agrees with protobuf.
func TestStatusCode(t *testing.T) {
	for _, tc := range []struct {
		b    []byte
		want int32
	}{
		{nil, 0},
		{[]byte{0x0a, 0x02, 0x08, 0x07}, 7},            // status{code: 7}
		{[]byte{0x0a, 0x00}, 0},                        // status{}
		{[]byte{0x12, 0x00, 0x0a, 0x02, 0x08, 16}, 16}, // another field first
	} {
		if got, ok := statusCode(tc.b); !ok || got != tc.want {
			t.Errorf("%x: got %d %v, want %d", tc.b, got, ok, tc.want)
		}
	}
}
