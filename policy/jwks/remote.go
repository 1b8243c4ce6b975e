package jwks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Source yields the current key set.
type Source interface {
	// Current returns the key set to use now. It fails only when no set has ever been loaded.
	Current(ctx context.Context) (*Set, error)
}

// Static is a Source that never changes.
type Static struct{ set *Set }

// NewStatic wraps a parsed set.
func NewStatic(s *Set) Static { return Static{set: s} }

// Current implements Source.
func (s Static) Current(context.Context) (*Set, error) { return s.set, nil }

// ErrNotLoaded is returned by Remote.Current before any fetch has succeeded.
var ErrNotLoaded = errors.New("jwks: key set not loaded")

// RemoteOptions tunes a Remote. Zero values take the defaults named on each field.
type RemoteOptions struct {
	Client          *http.Client     // default: a client with Timeout
	Timeout         time.Duration    // per fetch; default 5s
	RefreshInterval time.Duration    // age after which a set is refetched in the background; default 5m
	MinInterval     time.Duration    // least time between two fetches, including forced ones; default 30s
	MaxBytes        int64            // largest accepted document; default 1 MiB
	Now             func() time.Time // default time.Now
	OnFetch         func(err error)  // called after every fetch attempt (nil error on success)
	// OnSkip, if set, is called after a successful fetch whose set skipped keys (Set.Skipped),
	// when they differ from those of the set it replaces: once, not on every refresh.
	OnSkip func(skipped []string)
}

// Remote is a Source backed by a jwks_uri. It keeps the last good set: a failed fetch never
// discards it. Fetches happen in the background once the set is older than RefreshInterval,
// and on demand through Refresh (e.g. for an unknown kid), never more often than MinInterval.
type Remote struct {
	url  string
	opts RemoteOptions

	mu        sync.Mutex
	set       *Set
	fetchedAt time.Time // last successful fetch
	triedAt   time.Time // last attempt
	lastErr   error
	inflight  chan struct{} // closed when the running fetch ends; nil when none runs
}

// NewRemote makes a Remote for url. It does not fetch until first used.
func NewRemote(url string, o RemoteOptions) *Remote {
	return &Remote{url: url, opts: o.WithDefaults()}
}

// WithDefaults returns o with every zero field set to the default its comment names.
func (o RemoteOptions) WithDefaults() RemoteOptions {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = 5 * time.Minute
	}
	if o.MinInterval <= 0 {
		o.MinInterval = 30 * time.Second
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
	return o
}

// URL is the jwks_uri.
func (r *Remote) URL() string { return r.url }

// Current returns the last good set. Before the first success it waits (bounded by ctx and the
// fetch timeout) for a fetch; afterwards it never blocks: a stale set triggers a background refetch.
func (r *Remote) Current(ctx context.Context) (*Set, error) {
	r.mu.Lock()
	set := r.set
	if set != nil {
		if r.opts.Now().Sub(r.fetchedAt) >= r.opts.RefreshInterval {
			// A background refresh: no request waits for it, so it is no request's child
			// (a root span of its own when tracing).
			r.startLocked(context.Background())
		}
		r.mu.Unlock()
		return set, nil
	}
	done := r.startLocked(ctx)
	r.mu.Unlock()
	return r.wait(ctx, done)
}

// Refresh fetches the set now unless a fetch ran within MinInterval, waits for it (bounded by
// ctx), and returns the current set. Use it when a token names a kid the set lacks.
func (r *Remote) Refresh(ctx context.Context) (*Set, error) {
	r.mu.Lock()
	done := r.startLocked(ctx)
	r.mu.Unlock()
	return r.wait(ctx, done)
}

// wait waits for the fetch behind done (nil: none runs) or for ctx, then returns the current
// set; with none loaded, the error says why: the caller's context, or the last fetch.
func (r *Remote) wait(ctx context.Context, done <-chan struct{}) (*Set, error) {
	var ctxErr error
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			ctxErr = ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.set != nil:
		return r.set, nil
	case ctxErr != nil:
		return nil, fmt.Errorf("%w: %v", ErrNotLoaded, ctxErr)
	}
	return nil, fmt.Errorf("%w: %v", ErrNotLoaded, r.lastErr)
}

// startLocked starts a fetch unless one is running or one was tried within MinInterval, and
// returns the channel closed when the current fetch (if any) ends. The fetch outlives the
// request that started it (others wait for it too): it keeps ctx's values, such as the trace
// span it belongs to, but not its cancellation.
func (r *Remote) startLocked(ctx context.Context) <-chan struct{} {
	if r.inflight != nil {
		return r.inflight
	}
	if !r.triedAt.IsZero() && r.opts.Now().Sub(r.triedAt) < r.opts.MinInterval {
		return nil
	}
	r.triedAt = r.opts.Now()
	done := make(chan struct{})
	r.inflight = done
	go func() {
		set, err := r.fetch(context.WithoutCancel(ctx))
		r.mu.Lock()
		newSkips := false
		if err == nil {
			newSkips = len(set.Skipped()) > 0 && (r.set == nil || !slices.Equal(set.Skipped(), r.set.Skipped()))
			r.set, r.fetchedAt = set, r.opts.Now()
		}
		r.lastErr = err
		r.inflight = nil
		r.mu.Unlock()
		close(done)
		if r.opts.OnFetch != nil {
			r.opts.OnFetch(err)
		}
		if newSkips && r.opts.OnSkip != nil {
			r.opts.OnSkip(set.Skipped())
		}
	}()
	return done
}

func (r *Remote) fetch(ctx context.Context) (*Set, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks: %s: %w", r.url, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.opts.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: %s: %w", r.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: %s: HTTP %d", r.url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, r.opts.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("jwks: %s: %w", r.url, err)
	}
	if int64(len(body)) > r.opts.MaxBytes {
		return nil, fmt.Errorf("jwks: %s: document larger than %d bytes", r.url, r.opts.MaxBytes)
	}
	set, err := Parse(body)
	if err != nil {
		return nil, fmt.Errorf("jwks: %s: %w", r.url, err)
	}
	return set, nil
}
