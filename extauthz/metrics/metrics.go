// Package metrics exports certbind's Prometheus metrics: decisions, latency, the expiry of what
// certbind trusts and sees, configuration reloads, remote fetches and caches. Every label has a
// bounded set of values: modes, results and reasons are enumerations, trust anchors and CRLs come
// from the configuration; nothing a client sends becomes a label.
package metrics

import (
	"crypto/sha256"
	"encoding/hex"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/certbind/certbind/policy"
)

// Metrics holds certbind's collectors, registered on their own registry.
type Metrics struct {
	Registry *prometheus.Registry

	decisions  *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	certExpiry prometheus.Histogram
	reloads    *prometheus.CounterVec
	lastReload prometheus.Gauge
	fetches    *prometheus.CounterVec
	cache      *prometheus.CounterVec
	clients    prometheus.Gauge
	expiry     *expiryCollector
}

// New creates and registers the collectors, plus the Go runtime and process collectors.
func New() *Metrics { return NewWithClock(time.Now) }

// NewWithClock is New with the clock that the expiry gauges count days from.
func NewWithClock(now func() time.Time) *Metrics {
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
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "certbind_clients", Help: "Registered clients in the configuration in force.",
		}),
		expiry: &expiryCollector{
			now: now,
			anchor: prometheus.NewDesc("certbind_trust_anchor_expiry_days",
				"Days until each configured trust anchor expires.", []string{"subject", "sha256"}, nil),
			crl: prometheus.NewDesc("certbind_crl_next_update_days",
				"Days until each configured CRL's nextUpdate (negative: stale).", []string{"issuer", "sha256"}, nil),
		},
	}
	m.Registry.MustRegister(m.decisions, m.latency, m.certExpiry, m.reloads, m.lastReload, m.fetches,
		m.cache, m.clients, m.expiry,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// expiryCollector reports the days left on the trust anchors and CRLs of the configuration in
// force, counted at scrape time: a configuration that never changes still counts down, so an
// expiring CA or a stale CRL alerts before it denies everyone.
type expiryCollector struct {
	now         func() time.Time
	anchor, crl *prometheus.Desc
	trusted     atomic.Pointer[[]expiring]
}

// expiring is one trust anchor or CRL: its labels, worked out once per configuration.
type expiring struct {
	desc   *prometheus.Desc
	labels []string // name, short hash
	at     time.Time
}

func (c *expiryCollector) set(cfg *policy.Config) {
	var e []expiring
	for _, a := range cfg.TrustAnchors() {
		e = append(e, expiring{c.anchor, []string{a.Subject.String(), shortHash(a.Raw)}, a.NotAfter})
	}
	for _, l := range cfg.CRLs() {
		e = append(e, expiring{c.crl, []string{l.Issuer.String(), shortHash(l.Raw)}, l.NextUpdate})
	}
	c.trusted.Store(&e)
}

// Describe implements prometheus.Collector.
func (c *expiryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.anchor
	ch <- c.crl
}

// Collect implements prometheus.Collector.
func (c *expiryCollector) Collect(ch chan<- prometheus.Metric) {
	e := c.trusted.Load()
	if e == nil {
		return
	}
	now := c.now()
	for _, x := range *e {
		ch <- prometheus.MustNewConstMetric(x.desc, prometheus.GaugeValue, x.at.Sub(now).Hours()/24, x.labels...)
	}
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

// ObserveReload records a configuration load; on success the trust anchor and CRL gauges follow
// the new configuration.
func (m *Metrics) ObserveReload(cfg *policy.Config, err error, now time.Time) {
	if err != nil {
		m.reloads.WithLabelValues("failure").Inc()
		return
	}
	m.reloads.WithLabelValues("success").Inc()
	m.lastReload.Set(float64(now.Unix()))
	m.clients.Set(float64(len(cfg.Clients())))
	m.expiry.set(cfg)
}

// ObserveFetch records one remote call of kind (jwks, introspection, ocsp, crl, dpop_replay).
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
