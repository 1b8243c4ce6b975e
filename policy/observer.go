package policy

import "context"

// Observer is told what a configuration does besides deciding: each fetch it makes (key sets,
// revocation answers, introspection), keys it skipped in a fetched set, and cache events. It
// is how logs and metrics learn about them (server implements it). Methods are called from
// request and background goroutines at once, and must not block.
type Observer interface {
	// ObserveFetch reports one fetch: kind "jwks", "ocsp", "crl" or "introspection", the URL it
	// went to (for jwks discovery, the issuer), and nil on success.
	ObserveFetch(kind, target string, err error)
	// ObserveSkippedKeys reports keys of a fetched key set of a type certbind does not support
	// (jwks.Set.Skipped), so an operator learns why a kid is never found.
	ObserveSkippedKeys(jwksURI string, skipped []string)
	// ObserveCache reports a cache event: cache "chains" or "tokens", event "hit", "miss" or
	// "eviction".
	ObserveCache(cache, event string)
}

// nopObserver observes nothing: the Observer of a LoadOptions without one.
type nopObserver struct{}

func (nopObserver) ObserveFetch(string, string, error)  {}
func (nopObserver) ObserveSkippedKeys(string, []string) {}
func (nopObserver) ObserveCache(string, string)         {}

// CacheReport says, for one decision, which of the chains and tokens caches it consulted and
// whether they answered. An adapter that traces the decision puts one in the decision's context
// (WithCacheReport) and records it on the check's span once: cheaper than one span update per
// cache event.
type CacheReport struct {
	ChainsUsed, ChainsHit bool
	TokensUsed, TokensHit bool
}

type cacheReportKey struct{}

// WithCacheReport returns ctx carrying r, which the decision made with it fills in.
func WithCacheReport(ctx context.Context, r *CacheReport) context.Context {
	return context.WithValue(ctx, cacheReportKey{}, r)
}

func (r *CacheReport) record(cache string, hit bool) {
	switch cache {
	case "chains":
		r.ChainsUsed, r.ChainsHit = true, hit
	case "tokens":
		r.TokensUsed, r.TokensHit = true, hit
	}
}
