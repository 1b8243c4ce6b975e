package server

import (
	"time"

	"github.com/sirupsen/logrus"

	"github.com/certbind/certbind/extauthz/metrics"
	"github.com/certbind/certbind/policy"
)

// loadOptions reports what loading and the configuration's remote fetches do to the log and
// the metrics.
func loadOptions(log logrus.FieldLogger, m *metrics.Metrics) policy.LoadOptions {
	return policy.LoadOptions{
		OnCache: m.ObserveCache,
		OnRevocationFetch: func(kind, url string, err error) {
			m.ObserveFetch(kind, err)
			if err != nil {
				log.WithFields(logrus.Fields{"kind": kind, "url": url}).WithError(err).Warn("revocation fetch failed")
			}
		},
		OnIntrospection: func(err error) {
			m.ObserveFetch("introspection", err)
			if err != nil {
				log.WithError(err).Warn("introspection failed; the token is refused (fail closed)")
			}
		},
		OnJWKSFetch: func(uri string, err error) {
			m.ObserveFetch("jwks", err)
			if err != nil {
				log.WithField("jwks_uri", uri).WithError(err).Warn("jwks fetch failed; keeping the last good key set")
			} else {
				log.WithField("jwks_uri", uri).Debug("jwks fetched")
			}
		},
		OnJWKSSkip: func(uri string, skipped []string) {
			log.WithField("jwks_uri", uri).WithField("skipped", skipped).Warn("jwks keys of an unsupported type skipped; tokens signed with them are refused")
		},
	}
}

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
