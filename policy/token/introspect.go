package token

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

// IntrospectorConfig configures RFC 7662 introspection.
type IntrospectorConfig struct {
	Endpoint string
	// Client authenticates certbind to the endpoint. For client_secret_basic set ClientID and
	// ClientSecret (sent as HTTP Basic credentials); for mutual TLS (RFC 8705 tls_client_auth)
	// set ClientID alone, sent as the client_id form parameter, and give an http.Client whose
	// transport presents the certificate.
	Client       *http.Client
	ClientID     string
	ClientSecret string
	Timeout      time.Duration // per call; default 2s
	CacheTTL     time.Duration // longest a result is reused; default 60s; never past the token's exp
	CacheSize    int           // entries; default 10000
	Leeway       time.Duration
	// Issuer, when set, must equal the response's iss; Audiences, when set, must share a value
	// with its aud: an active token the server issued for another resource is refused.
	Issuer    string
	Audiences []string
	MaxBytes  int64           // largest response accepted; default 64 KiB
	OnCall    func(err error) // observes every endpoint call (nil error on an answer)
}

// Introspector asks the authorization server about opaque tokens. Answers (active or not, or
// an error answer about the token) are cached by the token's SHA-256, never beyond the token's
// exp; failures (network, timeouts, 5xx, certbind's own credentials refused) are never cached.
type Introspector struct {
	cfg   IntrospectorConfig
	cache *lru.Cache[[32]byte, cached] // entries carry their expiry
	calls singleflight.Group           // one endpoint call per token at a time
}

type cached struct {
	claims   *Claims // nil when inactive or rejected
	rejected error   // the endpoint's error answer about the token (KindRejected)
	until    time.Time
}

// NewIntrospector makes an Introspector.
func NewIntrospector(c IntrospectorConfig) *Introspector {
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	if c.CacheTTL <= 0 {
		c.CacheTTL = 60 * time.Second
	}
	if c.CacheSize <= 0 {
		c.CacheSize = 10000
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 64 << 10
	}
	if c.Client == nil {
		c.Client = &http.Client{}
	}
	cache, _ := lru.New[[32]byte, cached](c.CacheSize) // CacheSize > 0 by now
	return &Introspector{cfg: c, cache: cache}
}

// Introspect returns the claims of a token active at now.
func (in *Introspector) Introspect(ctx context.Context, raw string, now time.Time) (*Claims, error) {
	key := sha256.Sum256([]byte(raw))
	if e, ok := in.cache.Get(key); ok && now.Before(e.until) {
		return in.result(e, now)
	}
	// Requests carrying the same uncached token share one call. It runs detached from any one
	// caller (bounded by Timeout), so a caller that gives up does not fail the others.
	ch := in.calls.DoChan(string(key[:]), func() (any, error) {
		if e, ok := in.cache.Get(key); ok && now.Before(e.until) { // a call that just ended
			return e, nil
		}
		c, err := in.call(context.WithoutCancel(ctx), raw)
		if in.cfg.OnCall != nil {
			in.cfg.OnCall(err)
		}
		e := cached{claims: c, until: now.Add(in.cfg.CacheTTL)}
		switch {
		case KindOf(err) == KindRejected:
			e.rejected = err // an answer about the token: kept like active: false
		case err != nil:
			return nil, err // never cached
		case c != nil && !c.Expiry.IsZero() && c.Expiry.Before(e.until):
			e.until = c.Expiry
		}
		in.cache.Add(key, e)
		return e, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return in.result(res.Val.(cached), now)
	case <-ctx.Done():
		return nil, &Error{Kind: KindUnavailable, Err: fmt.Errorf("introspection: %w", ctx.Err())}
	}
}

func (in *Introspector) result(e cached, now time.Time) (*Claims, error) {
	if e.rejected != nil {
		return nil, e.rejected
	}
	c := e.claims
	if c == nil {
		return nil, fail(KindInactive, "introspection: active is false")
	}
	if err := checkTimes(c, now, in.cfg.Leeway, false); err != nil {
		return nil, err
	}
	if in.cfg.Issuer != "" && c.Issuer != in.cfg.Issuer {
		return nil, fail(KindIssuer, "introspection: iss %q, want %q", c.Issuer, in.cfg.Issuer)
	}
	if len(in.cfg.Audiences) > 0 && !slices.ContainsFunc(c.Audience, func(a string) bool { return slices.Contains(in.cfg.Audiences, a) }) {
		return nil, fail(KindAudience, "introspection: aud %q holds none of %q", c.Audience, in.cfg.Audiences)
	}
	return c, nil
}

// call performs one introspection request; a nil Claims with nil error means inactive.
func (in *Introspector) call(ctx context.Context, raw string) (*Claims, error) {
	ctx, cancel := context.WithTimeout(ctx, in.cfg.Timeout)
	defer cancel()
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
	if in.cfg.ClientID != "" && in.cfg.ClientSecret == "" {
		// RFC 8705 section 2, RFC 7662 section 2.1: a tls_client_auth client names itself with
		// client_id in the body and sends no Authorization header (a Basic header would be
		// client_secret_basic, with an empty secret).
		form.Set("client_id", in.cfg.ClientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.cfg.Endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &Error{Kind: KindUnavailable, Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if in.cfg.ClientSecret != "" {
		// RFC 6749 section 2.3.1: both parts form-urlencoded before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(in.cfg.ClientID), url.QueryEscape(in.cfg.ClientSecret))
	}
	resp, err := in.cfg.Client.Do(req)
	if err != nil {
		return nil, &Error{Kind: KindUnavailable, Err: fmt.Errorf("introspection: %w", err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errorAnswer(resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, in.cfg.MaxBytes+1))
	if err != nil {
		return nil, &Error{Kind: KindUnavailable, Err: fmt.Errorf("introspection: %w", err)}
	}
	if int64(len(body)) > in.cfg.MaxBytes {
		return nil, &Error{Kind: KindUnavailable, Err: fmt.Errorf("introspection: response larger than %d bytes", in.cfg.MaxBytes)}
	}
	m, err := parseObject(body)
	if err != nil {
		return nil, &Error{Kind: KindUnavailable, Err: fmt.Errorf("introspection: response: %v", err)}
	}
	var active *bool // a pointer, so that null is not read as false
	if raw, ok := m["active"]; !ok || json.Unmarshal(raw, &active) != nil || active == nil {
		return nil, &Error{Kind: KindUnavailable, Err: fmt.Errorf("introspection: response without a boolean active")}
	}
	if !*active {
		return nil, nil
	}
	c, err := claimsFrom(m)
	if err != nil {
		return nil, fail(KindMalformed, "introspection: %w", err)
	}
	return c, nil
}

// errorAnswer reads a non-200 introspection answer. An RFC 6749 section 5.2 error about the
// token (a 4xx with a JSON error such as invalid_request or unsupported_token_type) is a
// refusal of the token (KindRejected): the token is at fault, not the endpoint. Everything
// else is KindUnavailable and fails closed with 503: 5xx, 429, an answer without an OAuth
// error, and certbind's own credentials refused (401, 403, invalid_client,
// unauthorized_client: RFC 7662 section 2.3), which no token can fix.
func errorAnswer(resp *http.Response) error {
	var answer struct {
		Error string `json:"error"`
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_ = json.Unmarshal(body, &answer)
	code := resp.StatusCode
	err := fmt.Errorf("introspection: HTTP %d", code)
	if validErrorCode(answer.Error) {
		err = fmt.Errorf("introspection: HTTP %d %s", code, answer.Error)
	}
	switch {
	case code < 400 || code >= 500 || code == http.StatusUnauthorized || code == http.StatusForbidden || code == http.StatusTooManyRequests,
		!validErrorCode(answer.Error), answer.Error == "invalid_client", answer.Error == "unauthorized_client":
		return &Error{Kind: KindUnavailable, Err: err}
	}
	return &Error{Kind: KindRejected, Err: err}
}

// validErrorCode: an RFC 6749 error code, 1*( %x20-21 / %x23-5B / %x5D-7E ), short enough to log.
func validErrorCode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c > 0x7e {
			return false
		}
	}
	return true
}
