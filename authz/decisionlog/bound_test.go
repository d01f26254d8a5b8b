package decisionlog

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardenauthz/warden/policy"
)

type lineSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *lineSink) WriteLine(b []byte) error {
	s.mu.Lock()
	s.lines = append(s.lines, string(b))
	s.mu.Unlock()
	return nil
}
func (s *lineSink) Flush() error { return nil }
func (s *lineSink) Close() error { return nil }

func uidOf(typ, id string) types.ImplicitlyMarshaledEntityUID {
	return types.ImplicitlyMarshaledEntityUID(cedar.NewEntityUID(cedar.EntityType(typ), cedar.String(id)))
}

// TestRecordBoundedWorstCase: every string a caller influences at 100 KB
// of characters JSON escapes sixfold, hundreds of policies and errors, a
// Cedar section of every heavy kind: each line stays within
// max_record_bytes, is valid JSON, and says truncated; the sink writes
// every record, and nothing of the Cedar section survives that did not
// fit.
func TestRecordBoundedWorstCase(t *testing.T) {
	worst := strings.Repeat("\x01<", 50<<10)
	many := make([]string, 500)
	for i := range many {
		many[i] = worst
	}
	heavy := []cedar.Record{
		cedar.NewRecord(cedar.RecordMap{"path": cedar.String(worst)}),
		cedar.NewRecord(cedar.RecordMap{"request": cedar.NewRecord(cedar.RecordMap{"headers": func() cedar.Record {
			m := cedar.RecordMap{}
			for i := range 200 {
				m[cedar.String(strings.Repeat("h", i+1))] = cedar.String(strings.Repeat("\x01", 900))
			}
			return cedar.NewRecord(m)
		}()})}),
		cedar.NewRecord(cedar.RecordMap{"q": func() cedar.Set {
			vs := make([]cedar.Value, 2000)
			for i := range vs {
				vs[i] = cedar.Long(i)
			}
			return cedar.NewSet(vs...)
		}()}),
	}
	for _, lim := range []RecordLimits{{}, {MaxFieldBytes: 64, MaxRecordBytes: 4096, BufferBytes: 1 << 20}} {
		sink := &lineSink{}
		reg := prometheus.NewRegistry()
		l := New(Options{Size: 100, Limits: lim, Sinks: []LineSink{sink}, Registerer: reg})
		for _, ctx := range heavy {
			l.Record(&Record{
				DecisionID: "d", Decision: "deny", Reason: ReasonPolicyDeny, Principal: worst, Action: worst, Resource: worst,
				Request: RecordRequest{Method: worst, Host: worst, Path: worst, SourceIP: worst, RequestID: worst},
				Token:   &RecordToken{Iss: worst, Jti: worst}, Workload: worst, RateLimit: &RecordRateLimit{Rule: worst},
				Node: "n", Detail: worst, Policies: many, Errors: many,
				Cedar: &policy.Logged{Decision: "deny", Principal: uidOf("User", worst), Action: uidOf("Action", "GET"), Resource: uidOf("Path", "/"), Context: ctx},
			})
		}
		if err := l.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if d := metric(t, reg, "warden_decision_log_dropped_total"); d != 0 {
			t.Errorf("dropped %v records, want 0", d)
		}
		max := l.lim.MaxRecordBytes
		if len(sink.lines) != len(heavy) {
			t.Fatalf("%d lines, want %d", len(sink.lines), len(heavy))
		}
		for _, line := range sink.lines {
			var r Record
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if len(line) > max || !r.Truncated || r.Cedar != nil || len(r.Policies) > maxListed {
				t.Errorf("line of %d bytes (max %d), truncated %v, cedar %v, %d policies", len(line), max, r.Truncated, r.Cedar != nil, len(r.Policies))
			}
		}
	}
}

// TestCedarKeptWhenItFits: an ordinary Cedar section is kept whole (the
// record stays replayable), with credential-looking values redacted and
// the rest as it was.
func TestCedarKeptWhenItFits(t *testing.T) {
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbi1hbmQtbW9yZQ"
	sink := &lineSink{}
	l := New(Options{Size: 10, Sinks: []LineSink{sink}})
	l.Record(&Record{DecisionID: "d", Request: RecordRequest{Path: "/orders/" + jwt}, Cedar: &policy.Logged{
		Decision: "allow", Principal: uidOf("User", "corp|alice"), Action: uidOf("Action", "GET /orders/{id}"), Resource: uidOf("Order", jwt),
		Context: cedar.NewRecord(cedar.RecordMap{
			"request": cedar.NewRecord(cedar.RecordMap{
				"path":    cedar.String("/orders/" + jwt),
				"headers": cedar.NewRecord(cedar.RecordMap{"x-jwt-assertion": cedar.String(jwt), "accept": cedar.String("text/plain")}),
				"query":   cedar.NewRecord(cedar.RecordMap{"page": cedar.NewSet(cedar.String("2")), cedar.String(jwt): cedar.NewSet(cedar.String("x"))}),
			}),
			"extensions": cedar.NewRecord(cedar.RecordMap{"note": cedar.String("t=" + jwt)}), // one word: replaced whole
			"token":      cedar.NewRecord(cedar.RecordMap{"jti": cedar.String("5d41402abc4b2a76b9719d911017c592")}),
		}),
	}})
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	line := sink.lines[0]
	if strings.Contains(line, "eyJ") || strings.Contains(line, `"truncated"`) || !strings.Contains(line, `"cedar":{`) {
		t.Fatalf("want the Cedar section kept, redacted, not truncated: %s", line)
	}
	for _, keep := range []string{`"accept":"text/plain"`, `"page":["2"]`, `"/orders/[REDACTED]"`, `"note":"[REDACTED]"`, `"5d41402abc4b2a76b9719d911017c592"`, `"corp|alice"`} {
		if !strings.Contains(line, keep) {
			t.Errorf("%s not in %s", keep, line)
		}
	}
}

// TestBufferBytes: records waiting beyond buffer_bytes are dropped and
// counted even when the buffer has room in records.
func TestBufferBytes(t *testing.T) {
	block := make(chan struct{})
	sink := &blockSink{block: block}
	reg := prometheus.NewRegistry()
	l := New(Options{Size: 1000, Limits: RecordLimits{MaxFieldBytes: 1024, MaxRecordBytes: 4096, BufferBytes: 64 << 10}, Sinks: []LineSink{sink}, Registerer: reg})
	path := strings.Repeat("p", 1000)
	for range 200 {
		l.Record(&Record{DecisionID: "d", Request: RecordRequest{Path: path}})
	}
	n, b := l.Buffered()
	dropped := int(metric(t, reg, "warden_decision_log_dropped_total"))
	close(block)
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b > 64<<10 || n >= 200 || dropped == 0 || dropped+n > 200 {
		t.Errorf("buffered %d records, %d bytes (max 64 KiB); dropped %d", n, b, dropped)
	}
}

type blockSink struct{ block chan struct{} }

func (s *blockSink) WriteLine([]byte) error { <-s.block; return nil }
func (s *blockSink) Flush() error           { return nil }
func (s *blockSink) Close() error           { return nil }

// TestRingBytes: the ring keeps the newest records within its byte bound.
func TestRingBytes(t *testing.T) {
	g := NewRing(100, 10000)
	for i := range 50 {
		g.Add(&Record{DecisionID: string(rune('a' + i%26)), cost: 3000})
	}
	if n, b := g.Len(); n != 3 || b != 9000 {
		t.Errorf("ring holds %d records, %d bytes; want 3, 9000", n, b)
	}
	g.Add(&Record{DecisionID: "big", cost: 50000}) // one over the bound is still kept, alone
	if n, _ := g.Len(); n != 1 {
		t.Errorf("ring holds %d records, want the newest alone", n)
	}
}

// TestRedactShortEscapedPath: a request path whose word is an escaped
// slash and seven characters ("/%2Fabcdefg") is logged as it is; the
// redaction on the log's goroutine panicked on it, ending the process.
func TestRedactShortEscapedPath(t *testing.T) {
	sink := &lineSink{}
	l := New(Options{Size: 10, Sinks: []LineSink{sink}})
	l.Record(&Record{DecisionID: "d", Request: RecordRequest{Path: "/%2Fabcdefg"}, Resource: "/%2Fabcdefg"})
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(sink.lines) != 1 || !strings.Contains(sink.lines[0], `"path":"/%2Fabcdefg"`) {
		t.Fatalf("lines %q", sink.lines)
	}
}
