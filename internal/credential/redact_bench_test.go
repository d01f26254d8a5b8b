package credential

import "testing"

// BenchmarkRedactRecord: Redact over the strings of warden-bench's allow
// record as the decision log's goroutine redacts them (its request id a
// UUID, as Envoy's x-request-id is).
func BenchmarkRedactRecord(b *testing.B) {
	fields := []struct {
		s    string
		path bool
	}{{"GET", false}, {"api.example.com", false}, {"/v1/orders/1042", true}, {"198.51.100.23", false},
		{"6f1c2a8e-3b7d-4f0e-9a52-2d1f8c4b7e90", false}, {`User::"reader-42"`, false}, {`Action::"GET /v1/orders/{id}"`, true},
		{`Order::"1042"`, true}, {"https://issuer.example.com/realms/corp", false}, {"reader-42-1780409007512838000", false}, {"per-user", false}, {"orders-read", false}}
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range fields {
			Redact(f.s, f.path)
		}
	}
}
