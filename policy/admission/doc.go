// Package admission decides which computed results certbind's caches keep: a result is admitted
// the second time its key is seen, so a credential presented once (a scan, a flood of one-time
// certificates or tokens, certbind-bench's cold traffic) never displaces the entries of clients
// that come back, and costs no cache insertion, eviction or resident memory.
//
// The Doorkeeper remembers the 64-bit prefixes of recent keys, which are SHA-256 digests, in two
// generations of at most size each, so a key is recognized when it comes back within size to
// 2*size other new keys. Admission only ever changes what is cached, never what is decided: a
// key not admitted is computed again next time.
//
//	door := admission.New(4096)
//	if door.Admit(key) {
//		cache.Add(key, result)
//	}
package admission
