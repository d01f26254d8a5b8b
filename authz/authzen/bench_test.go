package authzen_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wardenauthz/warden/authz/authzen"
)

// BenchmarkAuthZEN measures an evaluation's server-side cost (the handler
// in process: authentication, body checks, mapping, Cedar, the record),
// to set beside authz/server BenchmarkCheck/memory/in-process, and a
// batch's cost per item. ns/op of the batch cases is per batch; see the
// per-item metric.
func BenchmarkAuthZEN(b *testing.B) {
	p := startPDP(b, exampleConfig, func(c *configT) {
		c.DecisionLog.Sinks = nil        // the log's writer is not what is measured
		c.DecisionLog.Replayable = false // as BenchmarkCheck's config
		one := 1.0
		c.DecisionLog.SampleAllow = &one
	})
	h, err := p.svc.AuthZENHandler()
	if err != nil {
		b.Fatal(err)
	}
	single, _ := json.Marshal(mortyUpdates("morty@the-citadel.com"))
	serve := func(b *testing.B, path string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+pepToken)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("HTTP %d %s", w.Code, w.Body)
		}
	}
	b.Run("evaluation", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			serve(b, authzen.PathEvaluation, single)
		}
	})
	for _, n := range []int{10, 50} {
		evs := make([]any, n)
		for i := range evs {
			evs[i] = map[string]any{"resource": map[string]any{"type": "todo", "id": fmt.Sprint("t", i), "properties": map[string]any{"ownerID": "morty@the-citadel.com"}}}
		}
		batch, _ := json.Marshal(map[string]any{"subject": map[string]any{"type": "user", "id": morty}, "action": map[string]any{"name": "can_update_todo"}, "evaluations": evs})
		b.Run(fmt.Sprintf("evaluations-%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				serve(b, authzen.PathEvaluations, batch)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/item")
		})
	}
}
