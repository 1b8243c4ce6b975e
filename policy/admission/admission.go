package admission

import (
	"encoding/binary"
	"sync"
)

// Doorkeeper admits a key on its second sighting. It is safe for concurrent use; the zero
// value admits nothing.
type Doorkeeper struct {
	mu        sync.Mutex
	size      int
	cur, prev map[uint64]struct{} // key prefixes seen, the newer generation first
}

// New returns a Doorkeeper that remembers between size and 2*size recent keys (at least one).
func New(size int) *Doorkeeper {
	size = max(size, 1)
	// The maps grow with use: a configuration whose caches see few keys holds little.
	return &Doorkeeper{size: size, cur: map[uint64]struct{}{}, prev: map[uint64]struct{}{}}
}

// Admit reports whether key was offered before, within the last size to 2*size other keys, and
// remembers it anew. Two keys with the same 64-bit prefix are one key here: such a key is admitted
// early, which changes nothing but what is cached.
func (d *Doorkeeper) Admit(key [32]byte) bool {
	if d == nil || d.size == 0 {
		return false
	}
	k := binary.LittleEndian.Uint64(key[:8])
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.cur[k]; ok {
		return true
	}
	_, seen := d.prev[k]
	if len(d.cur) >= d.size {
		// The older generation is forgotten; its map is reused.
		d.prev, d.cur = d.cur, d.prev
		clear(d.cur)
	}
	d.cur[k] = struct{}{} // a key seen again is renewed in the newer generation
	return seen
}
