package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Kind says which targets apply to a scenario: warm (every credential seen before, so a
// server's caches can answer) or cold (every credential new).
type Kind string

// The kinds of scenario.
const (
	Warm Kind = "warm"
	Cold Kind = "cold"
)

// Scenario is a named way of choosing the requests of a run.
type Scenario struct {
	Name string
	Kind Kind
	Mode Mode
}

// Scenarios are the scenarios a run can choose from, in report order.
var Scenarios = []Scenario{
	// One client certificate and one bound token, again and again: the cached hot path.
	{Name: "warm", Kind: Warm, Mode: ModeBoundToken},
	// The same certificate authenticating at the token endpoint.
	{Name: "warm-client-auth", Kind: Warm, Mode: ModeClientAuth},
	// A certificate and a token never seen before on every request.
	{Name: "cold", Kind: Cold, Mode: ModeBoundToken},
	// A certificate never seen before on every request, its chain verified.
	{Name: "cold-client-auth", Kind: Cold, Mode: ModeClientAuth},
}

// ScenarioNamed returns the scenario called name.
func ScenarioNamed(name string) (Scenario, bool) {
	for _, s := range Scenarios {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

// Requests returns the scenario's requests: the warm credential's alone, or one per credential
// of the cold pool.
func (s Scenario) Requests(warm *Credential, pool []*Credential) []Request {
	if s.Kind == Warm {
		return []Request{NewRequest(warm, s.Mode, 0)}
	}
	out := make([]Request, len(pool))
	for i, c := range pool {
		out[i] = NewRequest(c, s.Mode, uint64(i)+1)
	}
	return out
}

// Frames marshals every request in advance, on every CPU.
func Frames(reqs []Request, at time.Time) ([][]byte, error) {
	out := make([][]byte, len(reqs))
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(reqs); i = int(next.Add(1) - 1) {
				f, err := reqs[i].Frame(at)
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				out[i] = f
			}
		}()
	}
	wg.Wait()
	return out, firstErr
}

// Stream mints n distinct credentials numbered from first in the background, on workers
// goroutines, and sends their marshaled CheckRequests on the returned channel, which is closed
// after the last one (or when ctx ends). mode chooses each request's mode; a bound_token request
// carries a fresh token. The buffer lets generation run ahead of the load.
func (f *Fixture) Stream(ctx context.Context, first uint64, n int, workers, buffer int, mode func(i uint64) Mode) (<-chan []byte, <-chan error) {
	out := make(chan []byte, buffer)
	errc := make(chan error, 1)
	var next atomic.Uint64
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < uint64(n); i = next.Add(1) - 1 {
				m := mode(i)
				c, err := f.NewCredential(first+i, m == ModeBoundToken)
				var frame []byte
				if err == nil {
					frame, err = NewRequest(c, m, first+i).Frame(f.now)
				}
				if err != nil {
					select {
					case errc <- fmt.Errorf("bench: request %d: %w", i, err):
					default:
					}
					return
				}
				select {
				case out <- frame:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(out) }()
	return out, errc
}
