package review

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/policy"
)

// millionFile writes n replayable records (the generated month's requests,
// repeated with fresh ids and times over 30 days) of about the size Warden
// writes, and returns the file.
func millionFile(b *testing.B, n int) string {
	b.Helper()
	set := loadSet(b, policies)
	start := time.Now().Add(-30 * 24 * time.Hour)
	var bases [][]byte
	for i, use := range month {
		u := users[use.who]
		req := request(u, use.method, use.path, start)
		req.Headers = []policy.Header{{Name: "accept", Value: "application/json"}, {Name: "user-agent", Value: "curl/8.5.0"}, {Name: "x-request-id", Value: "0f6d2c1e-3b9a-4b7e-9d2f-5a1c8e7b6d40"}}
		res := set.Decide(req)
		rec := decisionlog.Record{Time: start, DecisionID: "DECISIONID", Decision: "deny", Status: 403, Reason: decisionlog.ReasonPolicyDeny,
			Policies: res.Reasons, Principal: res.Principal.String(), Action: res.Action.String(), Resource: res.Resource.String(),
			Request: decisionlog.RecordRequest{Method: use.method, Host: "api.example.com", Path: use.path, SourceIP: "10.0.0.7", RequestID: "0f6d2c1e"},
			Token:   &decisionlog.RecordToken{Iss: "https://idp", Jti: fmt.Sprint("j", i)}, LatencyUS: 40, Node: "warden-0", Cedar: res.Logged}
		if res.Allow {
			rec.Decision, rec.Status, rec.Reason = "allow", 200, decisionlog.ReasonPolicyAllow
		}
		line, err := json.Marshal(rec)
		if err != nil {
			b.Fatal(err)
		}
		bases = append(bases, line)
	}
	file := filepath.Join(b.TempDir(), "decisions.jsonl")
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	ts, _ := json.Marshal(start)
	step := 30 * 24 * time.Hour / time.Duration(n)
	size := 0
	for i := range n {
		line := bases[i%len(bases)]
		t, _ := json.Marshal(start.Add(time.Duration(i) * step))
		line = bytes.Replace(line, ts, t, 1)
		line = bytes.Replace(line, []byte("DECISIONID"), fmt.Appendf(nil, "%032x", i), 1)
		size += len(line) + 1
		w.Write(line)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	b.Logf("%d records, %.0f MB (%d bytes each)", n, float64(size)/1e6, size/n)
	return file
}

// BenchmarkMillion: warden replay and access-review over a million
// replayable records in a file sink (go test -bench Million -benchtime 1x
// ./authz/review/; BENCHMARKS.md).
func BenchmarkMillion(b *testing.B) {
	n := 1_000_000
	if testing.Short() {
		n = 20_000
	}
	file := millionFile(b, n)
	src := &decisionlog.FileSource{Path: file}
	since := time.Now().Add(-31 * 24 * time.Hour)
	set := loadSet(b, policies)
	b.Run("replay", func(b *testing.B) {
		for b.Loop() {
			rep, err := Replay(context.Background(), src, since, set, 100)
			if err != nil || rep.Replayed != n {
				b.Fatalf("%v: %+v", err, rep)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("access-review", func(b *testing.B) {
		for b.Loop() {
			rep, err := Review(context.Background(), src, since, set, Filter{})
			if err != nil || rep.Replayable != n {
				b.Fatalf("%v", err)
			}
			if _, err := rep.Suggest(set); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
}
