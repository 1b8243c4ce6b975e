package dpop

import (
	"context"
	"errors"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// ErrReplayFull: the in-process store is full of proofs still inside their window; a new one
// is refused rather than an older one forgotten (which would let it be replayed).
var ErrReplayFull = errors.New("dpop: replay store full of live proofs")

// Memory is an in-process Replay: each replica remembers the proofs it saw, so a proof sent to
// two replicas behind one proxy is accepted by both. Use a shared store for several replicas.
type Memory struct {
	mu   sync.Mutex
	seen *lru.Cache[string, time.Time]
	size int
}

// NewMemory remembers up to size proofs (at least 1).
func NewMemory(size int) *Memory {
	size = max(size, 1)
	c, _ := lru.New[string, time.Time](size) // size >= 1 cannot fail
	return &Memory{seen: c, size: size}
}

// Add records key until the given time; it reports false when key is already recorded and
// not yet expired at now.
func (m *Memory) Add(_ context.Context, key string, now, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if exp, ok := m.seen.Peek(key); ok && now.Before(exp) {
		return false, nil
	}
	if m.seen.Len() >= m.size {
		if _, exp, ok := m.seen.GetOldest(); ok && now.Before(exp) {
			return false, ErrReplayFull
		}
	}
	m.seen.Add(key, until)
	return true, nil
}
