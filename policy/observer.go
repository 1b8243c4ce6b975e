package policy

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
