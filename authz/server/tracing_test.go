package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/wardenauthz/warden/authz"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/httpauthz"
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

// TestHTTPSpanNamesTransport: a Check over the HTTP listener continues the
// forwarded traceparent too, and its span says transport http.
func TestHTTPSpanNamesTransport(t *testing.T) {
	e := start(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	a := authz.New(authz.Options{Authenticator: e.svc.Authn, Policies: e.svc.Policies, Tracer: tp.Tracer("test"), Now: fixedNow})
	srv := httptest.NewServer(httpauthz.New(httpauthz.Options{Authorizer: a}))
	defer srv.Close()
	r, _ := http.NewRequest("GET", srv.URL+"/v1/orders/7", nil)
	r.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	r.Header.Set("authorization", "Bearer "+e.token(t, "alice", "staff"))
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	spans := exp.GetSpans()
	if len(spans) != 1 || resp.StatusCode != 200 {
		t.Fatalf("%d spans, status %d", len(spans), resp.StatusCode)
	}
	s := spans[0]
	if s.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("span does not continue the traceparent")
	}
	found := false
	for _, kv := range s.Attributes {
		if kv.Key == "warden.transport" {
			found = kv.Value.AsString() == authz.TransportHTTP
		}
	}
	if !found {
		t.Errorf("no warden.transport=http in %v", s.Attributes)
	}
}
