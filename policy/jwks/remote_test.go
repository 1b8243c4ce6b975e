package jwks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// clock is an injected RemoteOptions.Now; the fetch goroutine reads it concurrently.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// jwksServer serves whatever body and status it currently holds and counts requests.
type jwksServer struct {
	*httptest.Server
	hits    atomic.Int64
	mu      sync.Mutex
	body    []byte
	status  int
	release chan struct{} // when non-nil, requests block until it is closed or the client leaves
	accept  atomic.Value  // Accept header of the last request
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{body: body, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.accept.Store(r.Header.Get("Accept"))
		s.mu.Lock()
		body, status, release := s.body, s.status, s.release
		s.mu.Unlock()
		if release != nil {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(status int, body []byte) {
	s.mu.Lock()
	s.status, s.body = status, body
	s.mu.Unlock()
}

// block makes requests hang until the returned func is called (registered as cleanup too, so the
// server can close).
func (s *jwksServer) block(t *testing.T) func() {
	ch := make(chan struct{})
	s.mu.Lock()
	s.release = ch
	s.mu.Unlock()
	var once sync.Once
	unblock := func() { once.Do(func() { close(ch) }) }
	t.Cleanup(unblock)
	return unblock
}

// fetches records OnFetch calls.
type fetches chan error

func newFetches() fetches { return make(chan error, 64) }

func (f fetches) hook(err error) { f <- err }

// next waits for the next fetch to end.
func (f fetches) next(t *testing.T) error {
	t.Helper()
	select {
	case err := <-f:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no fetch ended within 10s")
		return nil
	}
}

// none asserts no fetch is reported (none is running: callers only use it after the last one ended).
func (f fetches) none(t *testing.T) {
	t.Helper()
	select {
	case err := <-f:
		t.Fatalf("unexpected fetch, err %v", err)
	default:
	}
}

func mustKIDs(t *testing.T, s *Set, err error, want ...string) {
	t.Helper()
	if err != nil {
		t.Fatalf("got error %v, want keys %q", err, want)
	}
	if got := kids(s.Keys()); !slices.Equal(got, want) {
		t.Fatalf("keys %q, want %q", got, want)
	}
}

func TestRemoteFirstUseFetchesOnce(t *testing.T) {
	srv := newJWKSServer(t, set(pub(t, newEC(t).Public(), "k1")))
	f := newFetches()
	r := NewRemote(srv.URL+"/jwks", RemoteOptions{Now: newClock().Now, OnFetch: f.hook})
	if r.URL() != srv.URL+"/jwks" {
		t.Errorf("URL() = %q", r.URL())
	}
	if srv.hits.Load() != 0 {
		t.Fatal("NewRemote fetched before first use")
	}
	s, err := r.Current(t.Context())
	mustKIDs(t, s, err, "k1")
	if err := f.next(t); err != nil {
		t.Fatalf("OnFetch(%v), want nil on success", err)
	}
	for range 5 {
		s2, err := r.Current(t.Context())
		if err != nil || s2 != s {
			t.Fatalf("Current = %p, %v; want the cached set %p", s2, err, s)
		}
	}
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("server hit %d times, want 1", n)
	}
	if got := srv.accept.Load(); got != "application/jwk-set+json, application/json" {
		t.Errorf("Accept = %q", got)
	}
}

func TestRemoteConcurrentFirstUseSharesOneFetch(t *testing.T) {
	srv := newJWKSServer(t, set(pub(t, newEC(t).Public(), "k1")))
	unblock := srv.block(t)
	r := NewRemote(srv.URL, RemoteOptions{Now: newClock().Now})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			s, err := r.Current(t.Context())
			if err == nil && s.Len() != 1 {
				err = fmt.Errorf("%d keys", s.Len())
			}
			errs <- err
		})
	}
	for srv.hits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	unblock()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("server hit %d times, want 1", n)
	}
}

// TestRemoteRotation: a set older than RefreshInterval is returned at once and refetched in the
// background; the next caller sees the rotated keys.
func TestRemoteRotation(t *testing.T) {
	old, rotated := set(pub(t, newEC(t).Public(), "2025")), set(pub(t, newEC(t).Public(), "2026"), pub(t, newEC(t).Public(), "2025"))
	srv := newJWKSServer(t, old)
	clk, f := newClock(), newFetches()
	r := NewRemote(srv.URL, RemoteOptions{Now: clk.Now, OnFetch: f.hook, RefreshInterval: 10 * time.Minute, MinInterval: time.Minute})

	s, err := r.Current(t.Context())
	mustKIDs(t, s, err, "2025")
	f.next(t)
	srv.serve(http.StatusOK, rotated)

	clk.Advance(10*time.Minute - time.Nanosecond)
	s, err = r.Current(t.Context())
	mustKIDs(t, s, err, "2025")
	f.none(t)
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("refetched before RefreshInterval: %d hits", n)
	}

	clk.Advance(time.Nanosecond)
	s, err = r.Current(t.Context()) // stale: served as is, refetch started
	mustKIDs(t, s, err, "2025")
	if err := f.next(t); err != nil {
		t.Fatalf("background fetch: %v", err)
	}
	s, err = r.Current(t.Context())
	mustKIDs(t, s, err, "2026", "2025")
	if n := srv.hits.Load(); n != 2 {
		t.Errorf("server hit %d times, want 2", n)
	}
}

// TestRemoteKeepsLastGoodSet: no failed refetch, whatever its cause, replaces or drops the set.
func TestRemoteKeepsLastGoodSet(t *testing.T) {
	const maxBytes = 4096
	tests := []struct {
		name   string
		status int
		body   []byte
		is     error  // errors.Is target of the OnFetch error, or
		suffix string // the end of its text, after "jwks: <url>: "
	}{
		{"HTTP 500", http.StatusInternalServerError, []byte("oops"), nil, "HTTP 500"},
		{"HTTP 404", http.StatusNotFound, set(pub(t, newEC(t).Public(), "new")), nil, "HTTP 404"},
		{"not JSON", http.StatusOK, []byte("<html>"), nil, "not a JWK Set: invalid character '<' looking for beginning of value"},
		{"no keys", http.StatusOK, []byte(`{"keys":[]}`), ErrNoKeys, ""},
		{"private key", http.StatusOK, set(jwk(t, jose.JSONWebKey{Key: newEC(t), KeyID: "p"})), nil, "keys[0]: holds private key material; publish only public keys"},
		{"too large", http.StatusOK, set(pub(t, newEC(t).Public(), "new"), `{"pad":"`+strings.Repeat("a", maxBytes)+`"}`), nil,
			"document larger than 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t, set(pub(t, newEC(t).Public(), "good")))
			clk, f := newClock(), newFetches()
			r := NewRemote(srv.URL, RemoteOptions{Now: clk.Now, OnFetch: f.hook, RefreshInterval: time.Minute,
				MinInterval: time.Second, MaxBytes: maxBytes})
			first, err := r.Current(t.Context())
			mustKIDs(t, first, err, "good")
			f.next(t)

			srv.serve(tt.status, tt.body)
			clk.Advance(time.Minute)
			s, err := r.Current(t.Context())
			if err != nil || s != first {
				t.Fatalf("stale Current = %p, %v; want the last good set", s, err)
			}
			ferr := f.next(t)
			if ferr == nil {
				t.Fatal("OnFetch(nil) for a failed fetch")
			}
			if tt.is != nil && !errors.Is(ferr, tt.is) {
				t.Errorf("OnFetch(%q), want errors.Is %v", ferr, tt.is)
			}
			if tt.suffix != "" && ferr.Error() != "jwks: "+srv.URL+": "+tt.suffix {
				t.Errorf("OnFetch(%q), want %q", ferr, "jwks: "+srv.URL+": "+tt.suffix)
			}
			for _, fn := range []func(context.Context) (*Set, error){r.Current, r.Refresh} {
				if s, err := fn(t.Context()); err != nil || s != first {
					t.Errorf("after the failure: %p, %v; want the last good set", s, err)
				}
			}

			// The failure is retried after MinInterval, and a good answer replaces the set.
			srv.serve(http.StatusOK, set(pub(t, newEC(t).Public(), "next")))
			clk.Advance(time.Second)
			s, err = r.Refresh(t.Context())
			mustKIDs(t, s, err, "next")
			if n := srv.hits.Load(); n != 3 {
				t.Errorf("server hit %d times, want 3", n)
			}
		})
	}
}

// TestRemoteRefreshRateLimited: an unknown kid forces a refresh, but at most one fetch per
// MinInterval however many callers ask, counted at the server.
func TestRemoteRefreshRateLimited(t *testing.T) {
	srv := newJWKSServer(t, set(pub(t, newEC(t).Public(), "k1")))
	clk, f := newClock(), newFetches()
	r := NewRemote(srv.URL, RemoteOptions{Now: clk.Now, OnFetch: f.hook, RefreshInterval: time.Hour, MinInterval: 30 * time.Second})
	s, err := r.Current(t.Context())
	mustKIDs(t, s, err, "k1")
	f.next(t)
	srv.serve(http.StatusOK, set(pub(t, newEC(t).Public(), "k2")))

	steps := []struct {
		advance  time.Duration
		refresh  int // concurrent Refresh calls
		wantHits int64
		wantKIDs []string
	}{
		{0, 1, 1, []string{"k1"}},
		{10 * time.Second, 50, 1, []string{"k1"}},
		{20*time.Second - time.Nanosecond, 50, 1, []string{"k1"}},
		{time.Nanosecond, 50, 2, []string{"k2"}}, // 30s since the last fetch: exactly one more
		{time.Second, 50, 2, []string{"k2"}},
		{30 * time.Second, 1, 3, []string{"k2"}},
	}
	for i, st := range steps {
		clk.Advance(st.advance)
		hitsBefore := srv.hits.Load()
		var wg sync.WaitGroup
		results := make(chan []string, st.refresh)
		for range st.refresh {
			wg.Go(func() {
				s, err := r.Refresh(t.Context())
				if err != nil {
					t.Errorf("step %d: Refresh: %v", i, err)
					return
				}
				results <- kids(s.Keys())
			})
		}
		wg.Wait()
		close(results)
		for got := range results {
			// Callers that arrive while the fetch runs wait for it; none may see the old set
			// once the fetch has been started for them.
			if !slices.Equal(got, st.wantKIDs) {
				t.Errorf("step %d: Refresh returned %q, want %q", i, got, st.wantKIDs)
			}
		}
		if n := srv.hits.Load(); n != st.wantHits {
			t.Fatalf("step %d: server hit %d times, want %d", i, n, st.wantHits)
		}
		for range st.wantHits - hitsBefore { // OnFetch runs after waiters are released
			if err := f.next(t); err != nil {
				t.Errorf("step %d: OnFetch(%v)", i, err)
			}
		}
	}
}

func TestRemoteNotLoaded(t *testing.T) {
	srv := newJWKSServer(t, nil)
	srv.serve(http.StatusServiceUnavailable, nil)
	clk, f := newClock(), newFetches()
	r := NewRemote(srv.URL, RemoteOptions{Now: clk.Now, OnFetch: f.hook, MinInterval: 30 * time.Second})

	want := fmt.Sprintf("jwks: key set not loaded: jwks: %s: HTTP 503", srv.URL)
	for i, fn := range []func(context.Context) (*Set, error){r.Current, r.Current, r.Refresh} {
		s, err := fn(t.Context())
		if !errors.Is(err, ErrNotLoaded) || err.Error() != want {
			t.Fatalf("call %d: %p, %v; want %q", i, s, err, want)
		}
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("failed first fetch retried within MinInterval: %d hits", n)
	}
	f.next(t)

	srv.serve(http.StatusOK, set(pub(t, newEC(t).Public(), "k1")))
	clk.Advance(30 * time.Second)
	s, err := r.Current(t.Context())
	mustKIDs(t, s, err, "k1")
	if n := srv.hits.Load(); n != 2 {
		t.Errorf("server hit %d times, want 2", n)
	}
}

// TestRemoteCurrentBoundedByContext: before the first success Current waits for the fetch, but
// no longer than the caller's context.
func TestRemoteCurrentBoundedByContext(t *testing.T) {
	srv := newJWKSServer(t, set(pub(t, newEC(t).Public(), "k1")))
	unblock := srv.block(t)
	f := newFetches()
	r := NewRemote(srv.URL, RemoteOptions{Now: newClock().Now, OnFetch: f.hook, Timeout: time.Minute})

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	s, err := r.Current(ctx)
	if !errors.Is(err, ErrNotLoaded) || err.Error() != "jwks: key set not loaded: context deadline exceeded" {
		t.Fatalf("Current = %p, %v; want ErrNotLoaded: context deadline exceeded", s, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Current returned after %v, want about 50ms", d)
	}
	// Refresh joins the same fetch, and says why it gave up the same way.
	gone, stop := context.WithCancel(t.Context())
	stop()
	if s, err := r.Refresh(gone); err == nil || err.Error() != "jwks: key set not loaded: context canceled" {
		t.Fatalf("Refresh = %p, %v; want ErrNotLoaded: context canceled", s, err)
	}

	// The fetch the caller gave up on still completes and is kept.
	unblock()
	if err := f.next(t); err != nil {
		t.Fatal(err)
	}
	s, err = r.Current(t.Context())
	mustKIDs(t, s, err, "k1")
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("server hit %d times, want 1", n)
	}
}

// TestRemoteSlowServerBoundedByTimeout: a server that never answers costs at most Timeout, with
// the default client and with a client of our own that has no timeout.
func TestRemoteSlowServerBoundedByTimeout(t *testing.T) {
	for _, client := range []*http.Client{nil, {}} {
		t.Run(fmt.Sprintf("own client %v", client != nil), func(t *testing.T) {
			srv := newJWKSServer(t, set(pub(t, newEC(t).Public(), "k1")))
			srv.block(t)
			f := newFetches()
			r := NewRemote(srv.URL, RemoteOptions{Client: client, Now: newClock().Now, OnFetch: f.hook, Timeout: 100 * time.Millisecond})
			start := time.Now()
			_, err := r.Current(t.Context())
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Current returned after %v, want about 100ms", d)
			}
			if !errors.Is(err, ErrNotLoaded) {
				t.Fatalf("Current error %v, want ErrNotLoaded", err)
			}
			if ferr := f.next(t); !errors.Is(ferr, context.DeadlineExceeded) {
				t.Errorf("OnFetch(%v), want context.DeadlineExceeded", ferr)
			}
		})
	}
}

// TestRemoteMaxBytes: a document of exactly MaxBytes is read, one byte more is refused; the
// default limit is 1 MiB, so a 2 MB key set is refused.
func TestRemoteMaxBytes(t *testing.T) {
	key := pub(t, newEC(t).Public(), "k1")
	padded := func(n int) []byte { // a valid set padded with trailing whitespace to n bytes
		doc := set(key)
		return append(doc, strings.Repeat(" ", n-len(doc))...)
	}
	big := set(key, `{"kty":"EC","pad":"`+strings.Repeat("A", 2_000_000)+`"}`)
	tests := []struct {
		name     string
		maxBytes int64
		body     []byte
		msg      string // "" to accept
	}{
		{"exactly MaxBytes", 1000, padded(1000), ""},
		{"MaxBytes+1", 1000, padded(1001), "document larger than 1000 bytes"},
		{"2 MB with the default limit", 0, big, "document larger than 1048576 bytes"},
		{"exactly the default limit", 0, padded(1 << 20), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t, tt.body)
			f := newFetches()
			r := NewRemote(srv.URL, RemoteOptions{Now: newClock().Now, OnFetch: f.hook, MaxBytes: tt.maxBytes})
			s, err := r.Current(t.Context())
			ferr := f.next(t)
			if tt.msg == "" {
				mustKIDs(t, s, err, "k1")
				return
			}
			want := "jwks: " + srv.URL + ": " + tt.msg
			if !errors.Is(err, ErrNotLoaded) || ferr == nil || ferr.Error() != want {
				t.Errorf("Current = %v, OnFetch(%v); want ErrNotLoaded and %q", err, ferr, want)
			}
		})
	}
}

func TestRemoteBadURL(t *testing.T) {
	f := newFetches()
	r := NewRemote("http://[::1", RemoteOptions{Now: newClock().Now, OnFetch: f.hook})
	_, err := r.Current(t.Context())
	if !errors.Is(err, ErrNotLoaded) {
		t.Fatalf("Current error %v, want ErrNotLoaded", err)
	}
	if ferr := f.next(t); ferr == nil || !strings.HasPrefix(ferr.Error(), "jwks: http://[::1: ") {
		t.Errorf("OnFetch(%v), want the URL named", ferr)
	}
}

func TestRemoteSkipsUnsupportedKeys(t *testing.T) {
	// An issuer that publishes a key of a type certbind does not know keeps working with the
	// others, and the skip is reported once per fetch.
	srv := newJWKSServer(t, set(`{"kty":"XYZ","kid":"pq"}`, pub(t, newEC(t).Public(), "k1")))
	f := newFetches()
	clk := newClock()
	skipped := make(chan []string, 4)
	r := NewRemote(srv.URL, RemoteOptions{Now: clk.Now, OnFetch: f.hook, OnSkip: func(s []string) { skipped <- s }})
	s, err := r.Current(t.Context())
	mustKIDs(t, s, err, "k1")
	if err := f.next(t); err != nil {
		t.Fatalf("OnFetch(%v), want nil", err)
	}
	select {
	case got := <-skipped:
		if want := []string{`keys[0]: key type "XYZ" (crv "") not supported`}; !slices.Equal(got, want) {
			t.Errorf("OnSkip(%q), want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnSkip not called")
	}
	// A refresh that finds the same set says nothing again; a new skip is reported.
	for i, doc := range [][]byte{
		set(`{"kty":"XYZ","kid":"pq"}`, pub(t, newEC(t).Public(), "k2")),
		set(`{"kty":"XYZ","kid":"pq"}`, `{"kty":"ABC"}`, pub(t, newEC(t).Public(), "k3")),
	} {
		srv.serve(http.StatusOK, doc)
		clk.Advance(time.Hour)
		s, err := r.Refresh(t.Context())
		mustKIDs(t, s, err, fmt.Sprintf("k%d", i+2))
		if err := f.next(t); err != nil {
			t.Fatalf("refresh %d: OnFetch(%v)", i, err)
		}
	}
	select {
	case got := <-skipped:
		if want := []string{`keys[0]: key type "XYZ" (crv "") not supported`, `keys[1]: key type "ABC" (crv "") not supported`}; !slices.Equal(got, want) {
			t.Errorf("OnSkip(%q), want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnSkip not called for the new skip")
	}
	select {
	case got := <-skipped:
		t.Errorf("OnSkip(%q) again", got)
	default:
	}
}
