package decisionlog

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go"

	"github.com/wardenauthz/warden/policy"
)

// benchRecord is an allow record as the pipeline fills it for an
// Envoy-shaped GET with a bearer token (checkrequests/01), as the log's
// goroutine receives it (after Record's clip on the request path); with
// cedar, the Cedar section of a replayable log.
func benchRecord(cedarSection bool) *Record {
	now := time.Date(2026, 6, 2, 14, 3, 27, 512838000, time.UTC)
	r := &Record{
		Time: now, DecisionID: "0192d4c8-7e3f-7a51-9b2e-5c8d0f4a6b13", Node: "warden-7c9f",
		Decision: "allow", Status: 200, Reason: ReasonPolicyAllow, Policies: []string{"orders-read"},
		Principal: `User::"corp|alice"`, Action: `Action::"GET /v1/orders/{id}"`, Resource: `Order::"42"`,
		Request: RecordRequest{
			Method: "GET", Host: "api.example.com", Path: "/v1/orders/42", SourceIP: "198.51.100.23",
			RequestID: "6f1c2a8e-3b7d-4f0e-9a52-2d1f8c4b7e90",
		},
		Token:     &RecordToken{Iss: "https://issuer.example.com/realms/corp", Jti: "alice-1780409007512838000", Exp: now.Add(time.Hour).Truncate(time.Second)},
		RateLimit: &RecordRateLimit{Rule: "per-user", Remaining: 999999},
		LatencyUS: 87, Transport: "grpc",
	}
	if cedarSection {
		str := func(s string) cedar.Value { return cedar.String(s) }
		ip := netip.MustParseAddr("198.51.100.23")
		r.Cedar = &policy.Logged{
			Decision: "allow", Principal: uidOf("User", "corp|alice"), Parents: []uidT{uidOf("Role", "reader")},
			Action: uidOf("Action", "GET /v1/orders/{id}"), Resource: uidOf("Order", "42"),
			Context: cedar.NewRecord(cedar.RecordMap{
				"request": cedar.NewRecord(cedar.RecordMap{
					"method": str("GET"), "path": str("/v1/orders/42"), "host": str("api.example.com"),
					"scheme": str("https"), "protocol": str("HTTP/1.1"), "id": str("9854112396570129483"),
					"headers": cedar.NewRecord(cedar.RecordMap{
						"accept": str("application/json"), "user-agent": str("curl/8.7.1"),
						"x-envoy-external-address": str("198.51.100.23"), "x-forwarded-for": str("198.51.100.23"),
						"x-forwarded-proto": str("https"), "x-request-id": str("6f1c2a8e-3b7d-4f0e-9a52-2d1f8c4b7e90"),
					}),
				}),
				"path_params": cedar.NewRecord(cedar.RecordMap{"id": str("42")}),
				"source":      cedar.NewRecord(cedar.RecordMap{"ip": cedar.IPAddr(netip.PrefixFrom(ip, 32)), "port": cedar.Long(51514)}),
				"now":         cedar.NewDatetime(now),
				"token": cedar.NewRecord(cedar.RecordMap{
					"iss": str("https://issuer.example.com/realms/corp"), "sub": str("alice"), "aud": cedar.NewSet(str("api://orders")),
					"exp": cedar.Long(now.Unix() + 3600), "iat": cedar.Long(now.Unix()), "jti": str("alice-1780409007512838000"),
					"client_id": str("web"), "scope": cedar.NewSet(str("orders.read"), str("profile")),
				}),
				"credential": cedar.NewRecord(cedar.RecordMap{"kind": str("jwt")}),
				"route":      cedar.NewRecord(cedar.RecordMap{"service": str("orders"), "template": str("/v1/orders/{id}")}),
			}),
		}
		r.Hold(2048)
	}
	r.cost = recordOverhead + r.clip(DefaultRecordLimits.MaxFieldBytes, true, false)
	return r
}

// BenchmarkDecisionLogRecord is the log goroutine's cost for one record
// (bound, redact, encode, write to a file sink; a flush every 256 records
// as under load): an allow record as warden-bench's, without and with a
// Cedar section (decision_log.replayable), and with a Ring (the admin API's
// in-memory view).
func BenchmarkDecisionLogRecord(b *testing.B) {
	for _, bc := range []struct {
		name        string
		cedar, ring bool
	}{{"allow", false, false}, {"allow-cedar", true, false}, {"allow-cedar-ring", true, true}} {
		b.Run(bc.name, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "decisions.jsonl"))
			if err != nil {
				b.Fatal(err)
			}
			sink := WriterSink(f)
			o := Options{Size: 1, Sinks: []LineSink{sink}}
			if bc.ring {
				o.Keep = NewRing(1000, 1<<20)
			}
			l := New(o)
			r := benchRecord(bc.cedar)
			var buf []byte
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				buf = l.write(buf, r)
				if i%256 == 255 {
					l.fail(sink.Flush())
				}
			}
			b.StopTimer()
			if err := l.Close(b.Context()); err != nil {
				b.Fatal(err)
			}
		})
	}
}
