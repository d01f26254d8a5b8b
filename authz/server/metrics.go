package server

import "github.com/prometheus/client_golang/prometheus"

// metrics are what the assembly itself counts (SPEC §10): policy reloads
// (the engine is built here), issuer key fetches (identity reports them
// through a hook) and certificate reloads of the listeners. The pipeline
// (authz.NewMetrics) and the decision log (decisionlog.New) register their
// own on the same registry.
type metrics struct {
	reloads        *prometheus.CounterVec
	reloadDuration prometheus.Histogram
	jwksFetches    *prometheus.CounterVec
	tlsReloads     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_policy_reloads_total", Help: "Policy reload attempts, by result.",
		}, []string{"result"}),
		reloadDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "warden_policy_reload_duration_seconds", Help: "Time to load and check a policy set on reload (parse, entities, schema, index).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		jwksFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_jwks_fetches_total", Help: "JWKS fetches, by issuer and result.",
		}, []string{"issuer", "result"}),
		tlsReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_tls_reloads_total", Help: "Reloads of a listener's changed certificate files, by listener and result.",
		}, []string{"listener", "result"}),
	}
	reg.MustRegister(m.reloads, m.reloadDuration, m.jwksFetches, m.tlsReloads)
	return m
}
