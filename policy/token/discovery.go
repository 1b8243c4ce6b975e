package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/certbind/certbind/policy/jwks"
)

// MetadataRefreshInterval is how old discovered metadata may grow before it is fetched again,
// in the background, to follow an issuer that moves its jwks_uri.
const MetadataRefreshInterval = time.Hour

// DiscoveredKeys is a key source found through the issuer's metadata: RFC 8414
// (/.well-known/oauth-authorization-server) first, then OpenID Connect Discovery
// (/.well-known/openid-configuration). The metadata's issuer must equal the configured one
// (RFC 8414 section 3.3), and its jwks_uri then serves the keys with Remote's caching rules.
//
// Once discovered, the metadata is fetched again in the background every
// MetadataRefreshInterval (after a failure, every MinInterval). A new jwks_uri replaces the old
// one only after its first key set has loaded; until then, and whenever rediscovery fails, the
// keys keep coming from the last good jwks_uri.
type DiscoveredKeys struct {
	issuer string
	opts   jwks.RemoteOptions

	mu      sync.Mutex
	remote  *jwks.Remote
	tried   time.Time // last discovery attempt before the first success
	lastErr error
	next    time.Time     // once discovered: when to fetch the metadata again
	running bool          // a background rediscovery is running
	first   chan struct{} // closed when the running first discovery ends; nil when none runs

	rediscovered func() // test hook: called when a background rediscovery has ended
}

// NewDiscoveredKeys makes a source for issuer; nothing is fetched until first use.
func NewDiscoveredKeys(issuer string, o jwks.RemoteOptions) *DiscoveredKeys {
	return &DiscoveredKeys{issuer: issuer, opts: o.WithDefaults()}
}

// Current implements jwks.Source.
func (d *DiscoveredKeys) Current(ctx context.Context) (*jwks.Set, error) {
	r, err := d.resolve(ctx)
	if err != nil {
		return nil, err
	}
	return r.Current(ctx)
}

// Refresh refetches the keys (rate-limited by the Remote).
func (d *DiscoveredKeys) Refresh(ctx context.Context) (*jwks.Set, error) {
	r, err := d.resolve(ctx)
	if err != nil {
		return nil, err
	}
	return r.Refresh(ctx)
}

func (d *DiscoveredKeys) resolve(ctx context.Context) (*jwks.Remote, error) {
	d.mu.Lock()
	if d.remote != nil {
		if !d.running && !d.opts.Now().Before(d.next) {
			d.running = true
			go d.rediscover()
		}
		r := d.remote
		d.mu.Unlock()
		return r, nil
	}
	if d.first == nil {
		if !d.tried.IsZero() && d.opts.Now().Sub(d.tried) < d.opts.MinInterval {
			err := d.lastErr
			d.mu.Unlock()
			return nil, fmt.Errorf("discovery for %q failed recently: %w", d.issuer, err)
		}
		d.tried = d.opts.Now()
		d.first = make(chan struct{})
		go d.discoverFirst(d.first)
	}
	done := d.first
	d.mu.Unlock()
	// Each caller waits as long as its own context allows; the discovery itself runs detached
	// (bounded by Timeout per request), so a caller that gives up fails nobody else.
	select {
	case <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("discovery for %q: %w", d.issuer, ctx.Err())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.remote == nil {
		return nil, d.lastErr
	}
	return d.remote, nil
}

// discoverFirst runs the first discovery (and each retry until one succeeds) and closes done.
func (d *DiscoveredKeys) discoverFirst(done chan struct{}) {
	uri, err := d.discover(context.Background())
	if d.opts.OnFetch != nil {
		d.opts.OnFetch(err)
	}
	d.mu.Lock()
	if err != nil {
		d.lastErr = err
	} else {
		d.remote = jwks.NewRemote(uri, d.opts)
		d.next = d.opts.Now().Add(MetadataRefreshInterval)
	}
	d.first = nil
	d.mu.Unlock()
	close(done)
}

// rediscover fetches the metadata again and, when its jwks_uri changed, moves to the new one
// once that serves a key set. It runs in the background, one at a time.
func (d *DiscoveredKeys) rediscover() {
	// Two metadata documents at most, then the new jwks_uri: each bounded by Timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 3*d.opts.Timeout)
	defer cancel()
	uri, err := d.discover(ctx)
	if d.opts.OnFetch != nil {
		d.opts.OnFetch(err)
	}
	var moved *jwks.Remote
	if err == nil && uri != d.current().URL() {
		moved = jwks.NewRemote(uri, d.opts)
		_, err = moved.Current(ctx) // reports through OnFetch itself
	}
	d.mu.Lock()
	d.running = false
	switch {
	case err != nil:
		d.next = d.opts.Now().Add(d.opts.MinInterval)
	case moved != nil:
		d.remote = moved
		fallthrough
	default:
		d.next = d.opts.Now().Add(MetadataRefreshInterval)
	}
	hook := d.rediscovered
	d.mu.Unlock()
	if hook != nil {
		hook()
	}
}

func (d *DiscoveredKeys) current() *jwks.Remote {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.remote
}

func (d *DiscoveredKeys) discover(ctx context.Context) (string, error) {
	base := strings.TrimSuffix(d.issuer, "/")
	var errs []error
	for _, wellKnown := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		uri, err := d.fetchMetadata(ctx, wellKnownURL(base, wellKnown))
		if err == nil {
			return uri, nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("discovery for %q: %w", d.issuer, errors.Join(errs...))
}

// wellKnownURL inserts the well-known path between host and the issuer's path (RFC 8414
// section 3.1); OpenID Connect appends it instead, which is the same for a path-less issuer.
func wellKnownURL(issuer, wellKnown string) string {
	scheme, rest, _ := strings.Cut(issuer, "://")
	host, path, _ := strings.Cut(rest, "/")
	if path == "" {
		return issuer + wellKnown
	}
	if wellKnown == "/.well-known/openid-configuration" {
		return issuer + wellKnown
	}
	return scheme + "://" + host + wellKnown + "/" + path
}

func (d *DiscoveredKeys) fetchMetadata(ctx context.Context, u string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: HTTP %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	var md struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &md); err != nil {
		return "", fmt.Errorf("%s: %w", u, err)
	}
	if md.Issuer != d.issuer {
		return "", fmt.Errorf("%s: metadata issuer %q differs from %q", u, md.Issuer, d.issuer)
	}
	if !strings.HasPrefix(md.JWKSURI, "https://") && !strings.HasPrefix(md.JWKSURI, "http://") {
		return "", fmt.Errorf("%s: jwks_uri %q is not an http(s) URL", u, md.JWKSURI)
	}
	// An https issuer's keys must come over https too (OpenID Connect Discovery section 3):
	// plain http would let the network swap the signing keys.
	if strings.HasPrefix(d.issuer, "https://") && !strings.HasPrefix(md.JWKSURI, "https://") {
		return "", fmt.Errorf("%s: jwks_uri %q is not https, but the issuer is", u, md.JWKSURI)
	}
	return md.JWKSURI, nil
}
