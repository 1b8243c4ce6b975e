package policy

import (
	"os"
	"path/filepath"
	"testing"
)

// TestAdoptReplay: a configuration swapped in takes over the replay memory of the one in force,
// and its Redis client when every Redis setting is the same; a changed setting gets a client of
// its own.
func TestAdoptReplay(t *testing.T) {
	dir := t.TempDir()
	load := func(redis string) *Config {
		t.Helper()
		p := filepath.Join(dir, "certbind.yaml")
		os.WriteFile(p, []byte(`tokens:
  introspection: { endpoint: "http://127.0.0.1:1/introspect", client_id: certbind, client_secret: s, binding: dpop }
  dpop:
    replay: `+redis+`
`), 0o600)
		c, err := LoadConfig(p, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	same := `{ store: redis, redis: { address: "127.0.0.1:1", key_prefix: "a:" } }`
	a, b, other := load(same), load(same), load(`{ store: redis, redis: { address: "127.0.0.1:1", key_prefix: "b:" } }`)
	e := NewEngine(EngineConfig{Config: a})
	client := a.tokens.dpop.redis.r.Load()
	e.Swap(b)
	if b.tokens.dpop.redis.r.Load() != client {
		t.Error("the same Redis settings: the new configuration did not keep the client")
	}
	e.Swap(other)
	if other.tokens.dpop.redis.r.Load() == client {
		t.Error("another key prefix: the old client was kept")
	}

	m1, m2 := load("{ memory_size: 10 }"), load("{ memory_size: 10 }")
	mem := m1.tokens.dpop.memory.m.Load()
	e.Swap(m1)
	e.Swap(m2)
	if m2.tokens.dpop.memory.m.Load() != mem {
		t.Error("the replay memory was not handed over")
	}
	m3 := load("{ memory_size: 20 }")
	e.Swap(m3)
	if m3.tokens.dpop.memory.m.Load() == mem {
		t.Error("a store of another size took over the old one")
	}
}
