// Package metrics exports certbind's Prometheus metrics: decisions, latency, the expiry of what
// certbind trusts and sees, configuration reloads, remote fetches and caches. Every label has a
// bounded set of values: modes, results and reasons are enumerations, trust anchors and CRLs come
// from the configuration; nothing a client sends becomes a label.
package metrics

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/certbind/certbind/policy"
)

// Metrics holds certbind's collectors, registered on their own registry.
type Metrics struct {
	Registry *prometheus.Registry

	decisions     *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	certExpiry    prometheus.Histogram
	reloads       *prometheus.CounterVec
	lastReload    prometheus.Gauge
	fetches       *prometheus.CounterVec
	cache         *prometheus.CounterVec
	anchorExpiry  *prometheus.GaugeVec
	crlNextUpdate *prometheus.GaugeVec
	clients       prometheus.Gauge
}

// New creates and registers the collectors, plus the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certbind_decisions_total", Help: "Authorization decisions by mode, result (allow/deny) and reason.",
		}, []string{"mode", "result", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "certbind_decision_duration_seconds", Help: "Time to decide one request, by mode.",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1, .5, 1},
		}, []string{"mode"}),
		certExpiry: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "certbind_client_certificate_expiry_days", Help: "Days until the presented client certificates expire (negative: expired).",
			Buckets: []float64{0, 1, 3, 7, 14, 30, 60, 90, 180, 365},
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certbind_config_reloads_total", Help: "Configuration loads by result (success/failure).",
		}, []string{"result"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "certbind_config_last_reload_success_timestamp_seconds", Help: "Unix time of the last configuration load that succeeded.",
		}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certbind_fetches_total", Help: "Remote fetches (jwks, introspection, ocsp, crl) by result (ok/error).",
		}, []string{"kind", "result"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certbind_cache_events_total", Help: "Cache hits, misses and evictions by cache.",
		}, []string{"cache", "event"}),
		anchorExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "certbind_trust_anchor_expiry_days", Help: "Days until each configured trust anchor expires.",
		}, []string{"subject", "sha256"}),
		crlNextUpdate: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "certbind_crl_next_update_days", Help: "Days until each configured CRL's nextUpdate (negative: stale).",
		}, []string{"issuer", "sha256"}),
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "certbind_clients", Help: "Registered clients in the configuration in force.",
		}),
	}
	m.Registry.MustRegister(m.decisions, m.latency, m.certExpiry, m.reloads, m.lastReload, m.fetches,
		m.cache, m.anchorExpiry, m.crlNextUpdate, m.clients,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

const day = 24 * time.Hour

// ObserveDecision records one decision.
func (m *Metrics) ObserveDecision(d policy.Decision, took time.Duration, now time.Time) {
	result := "deny"
	if d.Allow {
		result = "allow"
	}
	mode := string(d.Mode)
	if mode == "" {
		mode = "none"
	}
	m.decisions.WithLabelValues(mode, result, string(d.Reason)).Inc()
	m.latency.WithLabelValues(mode).Observe(took.Seconds())
	if d.Certificate != nil {
		m.certExpiry.Observe(d.Certificate.Leaf.NotAfter.Sub(now).Hours() / 24)
	}
}

// ObserveReload records a configuration load; on success it replaces the trust anchor and CRL
// gauges with the new configuration's.
func (m *Metrics) ObserveReload(cfg *policy.Config, err error, now time.Time) {
	if err != nil {
		m.reloads.WithLabelValues("failure").Inc()
		return
	}
	m.reloads.WithLabelValues("success").Inc()
	m.lastReload.Set(float64(now.Unix()))
	m.clients.Set(float64(len(cfg.Clients())))
	m.anchorExpiry.Reset()
	for _, a := range cfg.TrustAnchors() {
		m.anchorExpiry.WithLabelValues(a.Subject.String(), shortHash(a.Raw)).Set(a.NotAfter.Sub(now).Hours() / 24)
	}
	m.crlNextUpdate.Reset()
	for _, l := range cfg.CRLs() {
		m.crlNextUpdate.WithLabelValues(l.Issuer.String(), shortHash(l.Raw)).Set(l.NextUpdate.Sub(now).Hours() / 24)
	}
}

// ObserveFetch records one remote fetch of kind (jwks, introspection, ocsp, crl).
func (m *Metrics) ObserveFetch(kind string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.fetches.WithLabelValues(kind, result).Inc()
}

// ObserveCache records a cache event (hit, miss, eviction) of the named cache.
func (m *Metrics) ObserveCache(cache, event string) {
	m.cache.WithLabelValues(cache, event).Inc()
}

func shortHash(der []byte) string {
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:8])
}
