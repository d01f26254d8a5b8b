package authz

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardenauthz/warden/authz/decisionlog"
)

// Metrics are the pipeline's Prometheus metrics (SPEC §10): its latency,
// its decisions, and the store errors it meets. Each other package
// registers its own (the decision log's in decisionlog, reloads, key
// fetches and listeners in server). A nil *Metrics records nothing.
type Metrics struct {
	checkDuration *prometheus.HistogramVec
	decisions     *prometheus.CounterVec
	storeErrors   *prometheus.CounterVec
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		checkDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "warden_check_duration_seconds", Help: "Time to answer a Check, by decision and transport (grpc, http).",
			Buckets: []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3},
		}, []string{"decision", "transport"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_decisions_total", Help: "Checks answered, by decision, reason and transport (grpc, http).",
		}, []string{"decision", "reason", "transport"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_store_errors_total", Help: "Shared-state store errors, by operation.",
		}, []string{"op"}),
	}
	reg.MustRegister(m.checkDuration, m.decisions, m.storeErrors)
	return m
}

func (m *Metrics) observe(rec *decisionlog.Record, d time.Duration) {
	if m == nil {
		return
	}
	m.checkDuration.WithLabelValues(string(rec.Decision), rec.Transport).Observe(d.Seconds())
	m.decisions.WithLabelValues(string(rec.Decision), string(rec.Reason), rec.Transport).Inc()
}

// StoreError counts a shared-state store error met outside the pipeline
// (the rate-limit fallback, the Redis stream sink): one metric for every
// store error.
func (m *Metrics) StoreError(op string) { m.storeError(op) }

func (m *Metrics) storeError(op string) {
	if m != nil {
		m.storeErrors.WithLabelValues(op).Inc()
	}
}
