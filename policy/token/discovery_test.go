package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/certbind/certbind/policy/jwks"
)

func TestWellKnownURL(t *testing.T) {
	const oauth, oidc = "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"
	tests := []struct {
		issuer, wellKnown, want string
	}{
		{"https://as.example", oauth, "https://as.example/.well-known/oauth-authorization-server"},
		{"https://as.example", oidc, "https://as.example/.well-known/openid-configuration"},
		{"https://as.example:8443", oauth, "https://as.example:8443/.well-known/oauth-authorization-server"},
		// RFC 8414 section 3.1 inserts the well-known path before the issuer's path ...
		{"https://as.example/tenant", oauth, "https://as.example/.well-known/oauth-authorization-server/tenant"},
		{"https://as.example:8443/realms/a/b", oauth, "https://as.example:8443/.well-known/oauth-authorization-server/realms/a/b"},
		// ... OpenID Connect Discovery 1.0 section 4 appends it.
		{"https://as.example/tenant", oidc, "https://as.example/tenant/.well-known/openid-configuration"},
		{"https://as.example:8443/realms/a/b", oidc, "https://as.example:8443/realms/a/b/.well-known/openid-configuration"},
	}
	for _, tt := range tests {
		if got := wellKnownURL(tt.issuer, tt.wellKnown); got != tt.want {
			t.Errorf("wellKnownURL(%q, %q) = %q, want %q", tt.issuer, tt.wellKnown, got, tt.want)
		}
	}
}

// authServer serves metadata documents and a JWK Set at paths a test chooses, recording the
// paths asked for.
type authServer struct {
	*httptest.Server
	mu      sync.Mutex
	routes  map[string]route
	paths   []string
	release chan struct{}
}

type route struct {
	status int
	body   string
}

func newAuthServer(t *testing.T) *authServer {
	t.Helper()
	s := &authServer{routes: map[string]route{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.paths = append(s.paths, r.URL.Path)
		rt, ok := s.routes[r.URL.Path]
		release := s.release
		s.mu.Unlock()
		if release != nil {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rt.status)
		fmt.Fprint(w, rt.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *authServer) route(path string, status int, body string) {
	s.mu.Lock()
	s.routes[path] = route{status, body}
	s.mu.Unlock()
}

func (s *authServer) hits() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.paths)
}

func metadata(issuer, jwksURI string) string {
	b, _ := json.Marshal(map[string]any{"issuer": issuer, "jwks_uri": jwksURI, "token_endpoint": issuer + "/token"})
	return string(b)
}

func jwksJSON(t *testing.T, keys ...jose.JSONWebKey) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const (
	oauthPath = "/.well-known/oauth-authorization-server"
	oidcPath  = "/.well-known/openid-configuration"
)

func TestDiscoveredKeys(t *testing.T) {
	key := newKey(t, jose.ES256, "k1")
	keys := jwksJSON(t, key.jwk("sig", ""))
	type env struct{ base, jwks string } // the server's URL and its JWK Set URL
	tests := []struct {
		name      string
		issuer    func(e env) string
		routes    func(e env) map[string]route
		wantPaths []string
		wantErr   func(e env) string // "" for success
	}{
		{"RFC 8414",
			func(e env) string { return e.base },
			func(e env) map[string]route {
				return map[string]route{oauthPath: {200, metadata(e.base, e.jwks)}, oidcPath: {200, metadata(e.base, "http://unused.invalid/")}}
			},
			[]string{oauthPath, "/jwks"}, nil},
		{"OpenID Connect when RFC 8414 is absent",
			func(e env) string { return e.base },
			func(e env) map[string]route { return map[string]route{oidcPath: {200, metadata(e.base, e.jwks)}} },
			[]string{oauthPath, oidcPath, "/jwks"}, nil},
		{"RFC 8414, issuer with a path",
			func(e env) string { return e.base + "/tenant/a" },
			func(e env) map[string]route {
				return map[string]route{oauthPath + "/tenant/a": {200, metadata(e.base+"/tenant/a", e.jwks)}}
			},
			[]string{oauthPath + "/tenant/a", "/jwks"}, nil},
		{"OpenID Connect, issuer with a path",
			func(e env) string { return e.base + "/tenant/a" },
			func(e env) map[string]route {
				return map[string]route{"/tenant/a" + oidcPath: {200, metadata(e.base+"/tenant/a", e.jwks)}}
			},
			[]string{oauthPath + "/tenant/a", "/tenant/a" + oidcPath, "/jwks"}, nil},
		{"issuer with a trailing slash",
			func(e env) string { return e.base + "/" },
			func(e env) map[string]route { return map[string]route{oauthPath: {200, metadata(e.base+"/", e.jwks)}} },
			[]string{oauthPath, "/jwks"}, nil},
		{"RFC 8414 names another issuer, OpenID Connect matches",
			func(e env) string { return e.base },
			func(e env) map[string]route {
				return map[string]route{oauthPath: {200, metadata("https://evil.example", e.jwks)}, oidcPath: {200, metadata(e.base, e.jwks)}}
			},
			[]string{oauthPath, oidcPath, "/jwks"}, nil},
		{"RFC 8414 fails, OpenID Connect answers",
			func(e env) string { return e.base },
			func(e env) map[string]route {
				return map[string]route{oauthPath: {500, ``}, oidcPath: {200, metadata(e.base, e.jwks)}}
			},
			[]string{oauthPath, oidcPath, "/jwks"}, nil},

		{"no metadata",
			func(e env) string { return e.base },
			func(e env) map[string]route { return nil },
			[]string{oauthPath, oidcPath},
			func(e env) string {
				return fmt.Sprintf("discovery for %q: %s: HTTP 404\n%s: HTTP 404", e.base, e.base+oauthPath, e.base+oidcPath)
			}},
		{"another issuer everywhere",
			func(e env) string { return e.base },
			func(e env) map[string]route {
				m := metadata("https://evil.example", e.jwks)
				return map[string]route{oauthPath: {200, m}, oidcPath: {200, m}}
			},
			[]string{oauthPath, oidcPath},
			func(e env) string {
				return fmt.Sprintf("discovery for %q: %s: metadata issuer %q differs from %q\n%s: metadata issuer %q differs from %q",
					e.base, e.base+oauthPath, "https://evil.example", e.base, e.base+oidcPath, "https://evil.example", e.base)
			}},
		{"issuer differing by a trailing slash",
			func(e env) string { return e.base },
			func(e env) map[string]route { return map[string]route{oauthPath: {200, metadata(e.base+"/", e.jwks)}} },
			[]string{oauthPath, oidcPath},
			func(e env) string {
				return fmt.Sprintf("discovery for %q: %s: metadata issuer %q differs from %q\n%s: HTTP 404",
					e.base, e.base+oauthPath, e.base+"/", e.base, e.base+oidcPath)
			}},
		{"issuer missing from the metadata",
			func(e env) string { return e.base },
			func(e env) map[string]route {
				return map[string]route{oauthPath: {200, `{"jwks_uri":"` + e.jwks + `"}`}}
			},
			[]string{oauthPath, oidcPath},
			func(e env) string {
				return fmt.Sprintf("discovery for %q: %s: metadata issuer \"\" differs from %q\n%s: HTTP 404",
					e.base, e.base+oauthPath, e.base, e.base+oidcPath)
			}},
		{"jwks_uri not http(s)",
			func(e env) string { return e.base },
			func(e env) map[string]route {
				return map[string]route{oauthPath: {200, metadata(e.base, "file:///etc/jwks.json")}}
			},
			[]string{oauthPath, oidcPath},
			func(e env) string {
				return fmt.Sprintf("discovery for %q: %s: jwks_uri \"file:///etc/jwks.json\" is not an http(s) URL\n%s: HTTP 404",
					e.base, e.base+oauthPath, e.base+oidcPath)
			}},
		{"jwks_uri missing",
			func(e env) string { return e.base },
			func(e env) map[string]route { return map[string]route{oauthPath: {200, `{"issuer":"` + e.base + `"}`}} },
			[]string{oauthPath, oidcPath},
			func(e env) string {
				return fmt.Sprintf("discovery for %q: %s: jwks_uri \"\" is not an http(s) URL\n%s: HTTP 404",
					e.base, e.base+oauthPath, e.base+oidcPath)
			}},
		{"metadata not JSON",
			func(e env) string { return e.base },
			func(e env) map[string]route { return map[string]route{oauthPath: {200, `<html>`}} },
			[]string{oauthPath, oidcPath},
			func(e env) string {
				return fmt.Sprintf("discovery for %q: %s: invalid character '<' looking for beginning of value\n%s: HTTP 404",
					e.base, e.base+oauthPath, e.base+oidcPath)
			}},
		{"the issuer's path is not the root's",
			func(e env) string { return e.base + "/tenant/a" },
			func(e env) map[string]route {
				return map[string]route{oauthPath: {200, metadata(e.base, e.jwks)}, oidcPath: {200, metadata(e.base, e.jwks)}}
			},
			[]string{oauthPath + "/tenant/a", "/tenant/a" + oidcPath},
			func(e env) string {
				iss := e.base + "/tenant/a"
				return fmt.Sprintf("discovery for %q: %s: HTTP 404\n%s: HTTP 404", iss, e.base+oauthPath+"/tenant/a", iss+oidcPath)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newAuthServer(t)
			e := env{base: srv.URL, jwks: srv.URL + "/jwks"}
			srv.route("/jwks", 200, keys)
			for p, r := range tt.routes(e) {
				srv.route(p, r.status, r.body)
			}
			var mu sync.Mutex
			var fetches []error // the Remote reports its fetches from another goroutine
			d := NewDiscoveredKeys(tt.issuer(e), jwks.RemoteOptions{Now: newClock().Now, OnFetch: func(err error) {
				mu.Lock()
				fetches = append(fetches, err)
				mu.Unlock()
			}})
			set, err := d.Current(t.Context())
			if got := srv.hits(); !slices.Equal(got, tt.wantPaths) {
				t.Errorf("requests %q, want %q", got, tt.wantPaths)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Current: %v", err)
				}
				if set.Len() != 1 || set.Keys()[0].KeyID != "k1" {
					t.Errorf("keys %v", set.Keys())
				}
				return
			}
			if err == nil {
				t.Fatalf("Current succeeded with %d keys", set.Len())
			}
			if want := tt.wantErr(e); err.Error() != want {
				t.Errorf("error\n%s\nwant\n%s", err, want)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(fetches) != 1 || fetches[0] == nil || fetches[0].Error() != err.Error() {
				t.Errorf("OnFetch calls %v, want the discovery error once", fetches)
			}
		})
	}
}

// TestDiscoveredKeysRetry: a failed discovery is retried at most once per MinInterval; once it
// succeeds the metadata is not fetched again and the keys follow Remote's rules.
func TestDiscoveredKeysRetry(t *testing.T) {
	key, rotated := newKey(t, jose.ES256, "k1"), newKey(t, jose.ES256, "k2")
	srv := newAuthServer(t)
	srv.route(oauthPath, http.StatusServiceUnavailable, ``)
	srv.route(oidcPath, http.StatusServiceUnavailable, ``)
	clk := newClock()
	d := NewDiscoveredKeys(srv.URL, jwks.RemoteOptions{Now: clk.Now, MinInterval: time.Minute, RefreshInterval: time.Hour})
	firstErr := fmt.Sprintf("discovery for %q: %s: HTTP 503\n%s: HTTP 503", srv.URL, srv.URL+oauthPath, srv.URL+oidcPath)
	recentErr := fmt.Sprintf("discovery for %q failed recently: %s", srv.URL, firstErr)

	steps := []struct {
		name     string
		advance  time.Duration
		setup    func()
		call     func(context.Context) (*jwks.Set, error)
		wantErr  string
		wantKID  string
		wantHits int
	}{
		{"first attempt", 0, nil, d.Current, firstErr, "", 2},
		{"again at once", 0, nil, d.Current, recentErr, "", 2},
		{"Refresh is limited too", 30 * time.Second, nil, d.Refresh, recentErr, "", 2},
		{"just before MinInterval", 30*time.Second - time.Nanosecond, nil, d.Current, recentErr, "", 2},
		{"MinInterval after the attempt", time.Nanosecond, nil, d.Current, firstErr, "", 4},
		{"server back, still limited", time.Second, func() {
			srv.route(oauthPath, 200, metadata(srv.URL, srv.URL+"/jwks"))
			srv.route("/jwks", 200, jwksJSON(t, key.jwk("sig", "")))
		}, d.Current, recentErr, "", 4},
		{"discovered", time.Minute, nil, d.Current, "", "k1", 6},
		{"cached", time.Minute, nil, d.Current, "", "k1", 6},
		{"metadata gone does not matter", time.Minute, func() {
			srv.route(oauthPath, 500, ``)
			srv.route("/jwks", 200, jwksJSON(t, rotated.jwk("sig", "")))
		}, d.Current, "", "k1", 6},
		{"Refresh refetches the keys only", 0, nil, d.Refresh, "", "k2", 7},
		{"Refresh within MinInterval", 0, nil, d.Refresh, "", "k2", 7},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		if st.setup != nil {
			st.setup()
		}
		set, err := st.call(t.Context())
		if st.wantErr != "" {
			if err == nil || err.Error() != st.wantErr {
				t.Errorf("%s: error %v\nwant %s", st.name, err, st.wantErr)
			}
		} else if err != nil || set.Keys()[0].KeyID != st.wantKID {
			t.Errorf("%s: %v, %v; want key %q", st.name, set, err, st.wantKID)
		}
		if n := len(srv.hits()); n != st.wantHits {
			t.Fatalf("%s: %d requests %q, want %d", st.name, n, srv.hits(), st.wantHits)
		}
	}
}

// TestDiscoveredKeysRediscovery: discovered metadata is fetched again in the background once
// MetadataRefreshInterval has passed. A moved jwks_uri is followed once it serves keys; a failed
// rediscovery, or a new jwks_uri that does not answer, keeps the last good keys and is retried
// after MinInterval.
func TestDiscoveredKeysRediscovery(t *testing.T) {
	k1, k2, k3 := newKey(t, jose.ES256, "k1"), newKey(t, jose.ES256, "k2"), newKey(t, jose.ES256, "k3")
	srv := newAuthServer(t)
	srv.route(oauthPath, 200, metadata(srv.URL, srv.URL+"/jwks"))
	srv.route("/jwks", 200, jwksJSON(t, k1.jwk("sig", "")))
	clk := newClock()
	fetched := make(chan error, 16)
	d := NewDiscoveredKeys(srv.URL, jwks.RemoteOptions{Now: clk.Now, MinInterval: time.Minute, RefreshInterval: 24 * time.Hour,
		OnFetch: func(err error) { fetched <- err }})
	ended := make(chan struct{}, 1)
	d.rediscovered = func() { ended <- struct{}{} }
	// rediscovery waits for the background rediscovery to end and for the want fetches it
	// reports (a fetch may report after the rediscovery's end signal: wait for the reports
	// themselves), and returns their failures; a fetch beyond want fails the test.
	rediscovery := func(step string, want int) (failed []error) {
		t.Helper()
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no rediscovery ended within 10s (paths %q)", step, srv.hits())
		}
		for i := 0; i < want; i++ {
			select {
			case err := <-fetched:
				if err != nil {
					failed = append(failed, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: %d of %d fetches reported within 10s (paths %q)", step, i, want, srv.hits())
			}
		}
		select {
		case err := <-fetched:
			t.Fatalf("%s: a fetch beyond the %d expected: %v", step, want, err)
		default:
		}
		return failed
	}
	wantKID := func(step, kid string) {
		t.Helper()
		set, err := d.Current(t.Context())
		if err != nil || set.Keys()[0].KeyID != kid {
			t.Fatalf("%s: %v, %v; want key %q", step, set, err, kid)
		}
	}
	noRediscovery := func(step string) {
		t.Helper()
		select {
		case <-ended:
			t.Fatalf("%s: rediscovery ran", step)
		case <-time.After(50 * time.Millisecond):
		}
	}

	wantKID("discovered", "k1")
	if n := len(srv.hits()); n != 2 {
		t.Fatalf("%d requests %q, want the metadata and /jwks", n, srv.hits())
	}
	<-fetched
	<-fetched
	clk.Advance(MetadataRefreshInterval - time.Second)
	wantKID("before the refresh interval", "k1")
	noRediscovery("before the refresh interval")

	// The issuer moves its keys, but the new jwks_uri is not serving yet: keep k1.
	srv.route(oauthPath, 200, metadata(srv.URL, srv.URL+"/jwks2"))
	clk.Advance(time.Second)
	wantKID("refresh due", "k1") // served from the old jwks_uri while rediscovery runs
	if failed := rediscovery("new jwks_uri down", 2); len(failed) != 1 || !strings.Contains(failed[0].Error(), "/jwks2: HTTP 404") {
		t.Fatalf("new jwks_uri down: failures %v", failed)
	}
	wantKID("new jwks_uri down", "k1")

	// Retried after MinInterval, not before.
	srv.route("/jwks2", 200, jwksJSON(t, k2.jwk("sig", "")))
	clk.Advance(30 * time.Second)
	wantKID("within MinInterval of the failure", "k1")
	noRediscovery("within MinInterval of the failure")
	clk.Advance(30 * time.Second)
	wantKID("retry due", "k1")
	if failed := rediscovery("retry", 2); len(failed) != 0 {
		t.Fatalf("retry: failures %v", failed)
	}
	wantKID("moved", "k2")

	// A failed rediscovery keeps the current keys.
	srv.route(oauthPath, 500, ``)
	srv.route(oidcPath, 500, ``)
	srv.route("/jwks2", 200, jwksJSON(t, k3.jwk("sig", "")))
	clk.Advance(MetadataRefreshInterval)
	wantKID("metadata down", "k2")
	if failed := rediscovery("metadata down", 1); len(failed) != 1 {
		t.Fatalf("metadata down: failures %v", failed)
	}
	wantKID("after the failed rediscovery", "k2")

	// The same jwks_uri again: the Remote, and its cached set, are kept.
	srv.route(oauthPath, 200, metadata(srv.URL, srv.URL+"/jwks2"))
	clk.Advance(time.Minute)
	wantKID("rediscovered, unchanged", "k2")
	if failed := rediscovery("unchanged", 1); len(failed) != 0 {
		t.Fatalf("unchanged: failures %v", failed)
	}
	wantKID("same jwks_uri keeps its cached set", "k2")
}

// TestDiscoveredKeysTimeout: a metadata endpoint that never answers costs at most Timeout per
// well-known URL.
func TestDiscoveredKeysTimeout(t *testing.T) {
	srv := newAuthServer(t)
	release := make(chan struct{})
	srv.mu.Lock()
	srv.release = release
	srv.mu.Unlock()
	t.Cleanup(func() { close(release) })

	for _, client := range []*http.Client{nil, {}} {
		d := NewDiscoveredKeys(srv.URL, jwks.RemoteOptions{Client: client, Now: newClock().Now, Timeout: 100 * time.Millisecond})
		start := time.Now()
		_, err := d.Current(t.Context())
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("own client %v: returned after %v", client != nil, el)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("own client %v: error %v, want context.DeadlineExceeded", client != nil, err)
		}
	}
}

// TestVerifyWithDiscoveredKeys: a Verifier over discovered keys follows a rotation through
// DiscoveredKeys.Refresh.
func TestVerifyWithDiscoveredKeys(t *testing.T) {
	old, next := newKey(t, jose.ES256, "old"), newKey(t, jose.ES256, "next")
	srv := newAuthServer(t)
	srv.route(oauthPath, 200, metadata(srv.URL, srv.URL+"/jwks"))
	srv.route("/jwks", 200, jwksJSON(t, old.jwk("sig", "")))
	clk := newClock()
	v := NewVerifier([]*Issuer{{Issuer: srv.URL, Keys: NewDiscoveredKeys(srv.URL, jwks.RemoteOptions{Now: clk.Now, MinInterval: time.Minute}),
		Audiences: []string{testAudience}, Algorithms: []jose.SignatureAlgorithm{jose.ES256}, Types: []string{"at+jwt"}}}, 0)
	c := claims(map[string]any{"iss": srv.URL})

	if _, err := v.Verify(t.Context(), old.mint(t, c, nil), clk.Now()); err != nil {
		t.Fatal(err)
	}
	srv.route("/jwks", 200, jwksJSON(t, next.jwk("sig", ""), old.jwk("sig", "")))
	clk.Advance(time.Minute)
	if _, err := v.Verify(t.Context(), next.mint(t, c, nil), clk.Now()); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if got, want := srv.hits(), []string{oauthPath, "/jwks", "/jwks"}; !slices.Equal(got, want) {
		t.Errorf("requests %q, want %q", got, want)
	}
}

// TestDiscoveredKeysHTTPSIssuer: an https issuer whose metadata points at an http jwks_uri is
// refused: the keys would travel where the network can swap them.
func TestDiscoveredKeysHTTPSIssuer(t *testing.T) {
	var iss string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, metadata(iss, "http://"+r.Host+"/jwks"))
	}))
	defer srv.Close()
	iss = srv.URL
	d := NewDiscoveredKeys(iss, jwks.RemoteOptions{Client: srv.Client(), Now: newClock().Now})
	_, err := d.Current(t.Context())
	if err == nil || !strings.Contains(err.Error(), `is not https, but the issuer is`) {
		t.Fatalf("Current: %v, want the http jwks_uri refused", err)
	}
}

// TestDiscoveredKeysCallerGivesUp: the first caller's deadline does not abort discovery, so it
// is not recorded as a failure for MinInterval.
func TestDiscoveredKeysCallerGivesUp(t *testing.T) {
	key := newKey(t, jose.ES256, "k1")
	srv := newAuthServer(t)
	srv.route(oauthPath, 200, metadata(srv.URL, srv.URL+"/jwks"))
	srv.route("/jwks", 200, jwksJSON(t, key.jwk("sig", "")))
	d := NewDiscoveredKeys(srv.URL, jwks.RemoteOptions{Now: newClock().Now, MinInterval: time.Hour})
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	d.Current(gone) // this caller has given up; its answer does not matter
	set, err := d.Current(t.Context())
	if err != nil || set.Keys()[0].KeyID != "k1" {
		t.Fatalf("after a caller gave up: %v, %v", set, err)
	}
}
