package server_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/wardenauthz/warden/authz"
	"github.com/wardenauthz/warden/authz/config"
)

// TestSpanContinuesTraceparent: the Check's span is a child of the
// traceparent in the request headers, and says what was decided.
func TestSpanContinuesTraceparent(t *testing.T) {
	e := start(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	a := authz.New(authz.Options{Authenticator: e.svc.Authn, Policies: e.svc.Policies, Tracer: tp.Tracer("test"), Now: fixedNow})
	req := sample(t, "01-get-bearer-jwt.json", e.token(t, "alice", "staff"))
	req.Attributes.Request.Http.Headers["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	out := a.Evaluate(context.Background(), req)
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("spans: %d", len(spans))
	}
	s := spans[0]
	if s.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("span %s parent %s: does not continue the traceparent", s.SpanContext.TraceID(), s.Parent.SpanID())
	}
	want := map[attribute.Key]string{"warden.decision": "allow", "warden.reason": "policy_allow", "warden.decision_id": out.Record.DecisionID}
	for _, kv := range s.Attributes {
		if w, ok := want[kv.Key]; ok && kv.Value.AsString() != w {
			t.Errorf("%s: got %s, want %s", kv.Key, kv.Value.AsString(), w)
		}
		delete(want, kv.Key)
	}
	if len(want) > 0 {
		t.Errorf("missing attributes: %v", want)
	}
}

// TestUnreachableCollector: tracing to a collector that is not there costs
// nothing visible: Checks are answered and shutdown does not hang.
func TestUnreachableCollector(t *testing.T) {
	e := start(t, func(c *config.Config) { c.Tracing.OTLPEndpoint, c.Tracing.Insecure = "127.0.0.1:1", true })
	resp, err := e.client.Check(context.Background(), sample(t, "01-get-bearer-jwt.json", e.token(t, "alice", "staff")))
	if err != nil || resp.GetStatus().GetCode() != 0 {
		t.Fatalf("%v %v", resp.GetStatus(), err)
	}
	start := time.Now()
	e.cancel()
	<-e.done
	e.done <- nil
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %s", d)
	}
}
