package authz

import (
	"go.opentelemetry.io/otel/propagation"
)

// headerCarrier exposes a CheckRequest's headers to OpenTelemetry
// propagators, so a Check's span continues the request's traceparent.
type headerCarrier struct{ in *request }

var _ propagation.TextMapCarrier = headerCarrier{}

func (c headerCarrier) Get(key string) string { return c.in.header(lower(key)) }
func (c headerCarrier) Set(string, string)    {}
func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c.in.headers))
	for _, h := range c.in.headers {
		keys = append(keys, h.Name)
	}
	return keys
}

func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

var traceContext = propagation.TraceContext{}
