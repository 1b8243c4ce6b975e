package dpop

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// ErrReplayFull: the in-process store is full of proofs still inside their window; a new one
// is refused rather than an older one forgotten (which would let it be replayed).
var ErrReplayFull = errors.New("dpop: replay store full of live proofs")

// Memory is an in-process Replay: each replica remembers the proofs it saw, so a proof sent to
// two replicas behind one proxy is accepted by both. Use a shared store for several replicas.
//
// It keeps two generations of entries, each a map from 16 bytes of the key's SHA-256 to the
// entry's expiry (about 40 bytes an entry). New entries go into the current generation; once
// every entry of the previous one has expired, the previous one is dropped whole and the current
// one takes its place. With proofs expiring a window after they are seen, the store holds at
// most two windows' worth of proofs, and never more than its size: when it is full of entries
// that have not expired, Add refuses (ErrReplayFull).
type Memory struct {
	mu        sync.Mutex
	size      int
	cur, prev map[[16]byte]int64 // key digest -> expiry, Unix nanoseconds
	curLast   int64              // the latest expiry in cur
	prevLast  int64              // the latest expiry in prev: once past, prev is dropped
}

// NewMemory remembers up to size proofs (at least 1).
func NewMemory(size int) *Memory {
	return &Memory{size: max(size, 1), cur: map[[16]byte]int64{}, prev: map[[16]byte]int64{}}
}

// Add records key until the given time; it reports false when key is already recorded and
// not yet expired at now.
func (m *Memory) Add(_ context.Context, key string, now, until time.Time) (bool, error) {
	sum := sha256.Sum256([]byte(key))
	var k [16]byte
	copy(k[:], sum[:16])
	t, exp := now.UnixNano(), until.UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rotate(t)
	if e, ok := m.cur[k]; ok && t < e {
		return false, nil
	}
	if e, ok := m.prev[k]; ok && t < e {
		return false, nil
	}
	if len(m.cur)+len(m.prev) >= m.size {
		return false, ErrReplayFull
	}
	m.cur[k] = exp
	m.curLast = max(m.curLast, exp)
	return true, nil
}

// rotate drops the previous generation once all of it has expired at t, and, when the current
// generation has expired too, that as well.
func (m *Memory) rotate(t int64) {
	if t < m.prevLast {
		return
	}
	switch {
	case t >= m.curLast:
		m.prev, m.cur = map[[16]byte]int64{}, map[[16]byte]int64{}
		m.prevLast, m.curLast = 0, 0
	default:
		m.prev, m.cur = m.cur, map[[16]byte]int64{}
		m.prevLast, m.curLast = m.curLast, 0
	}
}

// Len is how many entries the store holds, expired ones not yet dropped included.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.cur) + len(m.prev)
}
