package authz

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are Warden's Prometheus metrics (SPEC §10). A nil *Metrics
// records nothing.
type Metrics struct {
	checkDuration  *prometheus.HistogramVec
	decisions      *prometheus.CounterVec
	Reloads        *prometheus.CounterVec
	ReloadDuration prometheus.Histogram
	JWKSFetches    *prometheus.CounterVec
	storeErrors    *prometheus.CounterVec
	LogDropped     prometheus.Counter
	LogErrors      prometheus.Counter
	TLSReloads     *prometheus.CounterVec
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
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_policy_reloads_total", Help: "Policy reload attempts, by result.",
		}, []string{"result"}),
		ReloadDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "warden_policy_reload_duration_seconds", Help: "Time to load and check a policy set on reload (parse, entities, schema, index).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		JWKSFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_jwks_fetches_total", Help: "JWKS fetches, by issuer and result.",
		}, []string{"issuer", "result"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_store_errors_total", Help: "Shared-state store errors, by operation.",
		}, []string{"op"}),
		LogDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_decision_log_dropped_total", Help: "Decision records dropped because the buffer was full.",
		}),
		LogErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_decision_log_write_errors_total", Help: "Failed writes or flushes of a decision log sink.",
		}),
		TLSReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_tls_reloads_total", Help: "Reloads of a listener's changed certificate files, by listener and result.",
		}, []string{"listener", "result"}),
	}
	reg.MustRegister(m.checkDuration, m.decisions, m.Reloads, m.ReloadDuration, m.JWKSFetches, m.storeErrors, m.LogDropped, m.LogErrors, m.TLSReloads)
	return m
}

func (m *Metrics) observe(rec *Record, d time.Duration) {
	if m == nil {
		return
	}
	m.checkDuration.WithLabelValues(string(rec.Decision), rec.Transport).Observe(d.Seconds())
	m.decisions.WithLabelValues(string(rec.Decision), string(rec.Reason), rec.Transport).Inc()
}

// StoreError counts a shared-state store error.
func (m *Metrics) StoreError(op string) { m.storeError(op) }

func (m *Metrics) storeError(op string) {
	if m != nil {
		m.storeErrors.WithLabelValues(op).Inc()
	}
}
