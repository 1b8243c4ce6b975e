package server

import (
	"time"

	"github.com/sirupsen/logrus"

	"github.com/certbind/certbind/extauthz/metrics"
	"github.com/certbind/certbind/policy"
)

// observer reports what a configuration's fetches and caches do to the log and the metrics.
type observer struct {
	log logrus.FieldLogger
	m   *metrics.Metrics
}

func (o observer) ObserveFetch(kind, target string, err error) {
	o.m.ObserveFetch(kind, err)
	switch {
	case err == nil && kind == "jwks":
		o.log.WithField("jwks_uri", target).Debug("jwks fetched")
	case err == nil:
	case kind == "jwks":
		o.log.WithField("jwks_uri", target).WithError(err).Warn("jwks fetch failed; keeping the last good key set")
	case kind == "introspection":
		o.log.WithError(err).Warn("introspection failed; the token is refused (fail closed)")
	case kind == "dpop_replay":
		o.log.WithError(err).Warn("the DPoP replay store did not answer; replay.on_error decides (deny by default)")
	default:
		o.log.WithFields(logrus.Fields{"kind": kind, "url": target}).WithError(err).Warn("revocation fetch failed")
	}
}

func (o observer) ObserveSkippedKeys(uri string, skipped []string) {
	o.log.WithField("jwks_uri", uri).WithField("skipped", skipped).Warn("jwks keys of an unsupported type skipped; tokens signed with them are refused")
}

func (o observer) ObserveCache(cache, event string) { o.m.ObserveCache(cache, event) }

// onLoad logs every load attempt, records it in the metrics, and marks the Server serving once
// a configuration is in force.
func (s *Server) onLoad(cfg *policy.Config, err error) {
	s.metrics.ObserveReload(cfg, err, time.Now())
	path := s.c.ConfigPath
	if err != nil {
		s.log.WithError(err).WithField("config", path).Error("configuration not loaded; the previous one stays in force")
		return
	}
	s.log.WithFields(logrus.Fields{"config": path, "clients": len(cfg.Clients())}).Info("configuration loaded")
	for _, w := range cfg.Warnings() {
		s.log.WithField("config", path).Warn(w)
	}
	s.setServing(true)
}
