package authz

import (
	"context"
	"net/http"
)

// Transports name how a Check reached Warden: the decision record's
// transport, the metrics' transport label and the span's warden.transport.
const (
	TransportGRPC = "grpc" // envoy.service.auth.v3.Authorization/Check
	TransportHTTP = "http" // server.http_authz_addr (Envoy's HTTP service, forward auth)
)

type transportKey struct{}

// WithTransport marks ctx's Checks as arriving over transport
// (TransportHTTP); a Check without the mark is TransportGRPC.
func WithTransport(ctx context.Context, transport string) context.Context {
	return context.WithValue(ctx, transportKey{}, transport)
}

func transportOf(ctx context.Context) string {
	if t, ok := ctx.Value(transportKey{}).(string); ok && t != "" {
		return t
	}
	return TransportGRPC
}

// Refusal is a request the transport will not let the pipeline judge (a
// forwarded method or URI from an untrusted or inconsistent proxy): the
// Check denies it as request_invalid, before any credential is read, with
// the same record, metrics and answer as any other denial.
type Refusal struct {
	Status int    // HTTP status; 0 means 400
	Detail string // safe to show the client
}

type refusalKey struct{}

// WithRefusal makes ctx's Check deny with r (see Refusal).
func WithRefusal(ctx context.Context, r Refusal) context.Context {
	return context.WithValue(ctx, refusalKey{}, r)
}

// refused is the denial ctx carries, nil when it carries none.
func refused(ctx context.Context) *denial {
	r, ok := ctx.Value(refusalKey{}).(Refusal)
	if !ok {
		return nil
	}
	if r.Status == 0 {
		r.Status = http.StatusBadRequest
	}
	return &denial{reason: ReasonRequestInvalid, status: r.Status, detail: r.Detail}
}
