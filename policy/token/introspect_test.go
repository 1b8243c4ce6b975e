package token

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// introspection is an RFC 7662 endpoint whose answer a test sets per token.
type introspection struct {
	*httptest.Server
	calls atomic.Int64

	mu      sync.Mutex
	answers map[string]string // token -> response body; others get {"active":false}
	status  int
	reqs    []*http.Request // copies, with the form parsed
	forms   []url.Values
	release chan struct{} // when non-nil, requests block until it is closed or the client leaves
}

func newIntrospection(t *testing.T) *introspection {
	t.Helper()
	s := &introspection{answers: map[string]string{}, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		s.mu.Lock()
		s.reqs = append(s.reqs, r.Clone(context.Background()))
		s.forms = append(s.forms, form)
		answer, ok := s.answers[form.Get("token")]
		status, release := s.status, s.release
		s.mu.Unlock()
		if release != nil {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		if !ok {
			answer = `{"active":false}`
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *introspection) answer(token, body string) {
	s.mu.Lock()
	s.answers[token] = body
	s.mu.Unlock()
}

func (s *introspection) setStatus(code int) {
	s.mu.Lock()
	s.status = code
	s.mu.Unlock()
}

func (s *introspection) last() (*http.Request, url.Values) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs[len(s.reqs)-1], s.forms[len(s.forms)-1]
}

func activeAnswer(extra string) string {
	return fmt.Sprintf(`{"active":true,"iss":%q,"sub":"user-1","client_id":"billing","aud":%q,"scope":"read","exp":%d,"cnf":{"x5t#S256":%q}%s}`,
		testIssuer, testAudience, t0.Add(time.Hour).Unix(), testX5t, extra)
}

// TestIntrospectClientSecretBasic: RFC 6749 section 2.3.1 form-urlencodes client_id and secret
// before they are joined with ":" and base64-encoded, so ":" in the id and "%", "+", " " and
// non-ASCII in the secret survive.
func TestIntrospectClientSecretBasic(t *testing.T) {
	tests := []struct {
		name, id, secret string
		encoded          string // "id:secret" after form-urlencoding, written out by hand
	}{
		{"plain (RFC 6749 example)", "s6BhdRkqt3", "7Fjfp0ZBr1KtDRbnfVdmIw", "s6BhdRkqt3:7Fjfp0ZBr1KtDRbnfVdmIw"},
		{"colon in the id", "urn:example:certbind", "s3cret", "urn%3Aexample%3Acertbind:s3cret"},
		{"specials in the secret", "certbind", "p@ss w:rd+%/é&=?", "certbind:p%40ss+w%3Ard%2B%25%2F%C3%A9%26%3D%3F"},
		// Go leaves "~" as is (RFC 3986 unreserved); a form decoder reads it either way.
		{"unreserved characters untouched", "a-b_c.d~e", "A-Z_0.9~*", "a-b_c.d~e:A-Z_0.9~%2A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newIntrospection(t)
			srv.answer("tok", activeAnswer(""))
			in := NewIntrospector(IntrospectorConfig{Endpoint: srv.URL, ClientID: tt.id, ClientSecret: tt.secret})
			if _, err := in.Introspect(t.Context(), "tok", t0); err != nil {
				t.Fatal(err)
			}
			r, _ := srv.last()
			want := "Basic " + base64.StdEncoding.EncodeToString([]byte(tt.encoded))
			if got := r.Header.Get("Authorization"); got != want {
				t.Errorf("Authorization %q\nwant          %q", got, want)
			}
			// And a server decoding as RFC 6749 says recovers the credentials.
			id, secret, ok := r.BasicAuth()
			if !ok {
				t.Fatal("no Basic credentials")
			}
			id, err1 := url.QueryUnescape(id)
			secret, err2 := url.QueryUnescape(secret)
			if err1 != nil || err2 != nil || id != tt.id || secret != tt.secret {
				t.Errorf("server decoded %q / %q (%v, %v), want %q / %q", id, secret, err1, err2, tt.id, tt.secret)
			}
		})
	}
}

func TestIntrospectRequest(t *testing.T) {
	srv := newIntrospection(t)
	const tok = "2YotnFZFEjr1zCsicMWpAA+/=&x y"
	srv.answer(tok, activeAnswer(""))
	in := NewIntrospector(IntrospectorConfig{Endpoint: srv.URL + "/introspect"})
	if _, err := in.Introspect(t.Context(), tok, t0); err != nil {
		t.Fatal(err)
	}
	r, form := srv.last()
	if r.Method != http.MethodPost || r.URL.Path != "/introspect" {
		t.Errorf("%s %s, want POST /introspect", r.Method, r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type %q", ct)
	}
	if a := r.Header.Get("Accept"); a != "application/json" {
		t.Errorf("Accept %q", a)
	}
	if h, ok := r.Header["Authorization"]; ok {
		t.Errorf("Authorization %q sent without a ClientID", h)
	}
	if len(form) != 2 || form.Get("token") != tok || form.Get("token_type_hint") != "access_token" {
		t.Errorf("form %v", form)
	}
}

// TestIntrospectMutualTLSClientID: with mutual TLS (no secret) certbind names itself with
// client_id in the form and sends no Authorization header (RFC 8705 section 2, RFC 7662
// section 2.1): a Basic header with an empty secret is client_secret_basic, which an
// authorization server refuses.
func TestIntrospectMutualTLSClientID(t *testing.T) {
	srv := newIntrospection(t)
	srv.answer("tok", activeAnswer(""))
	in := NewIntrospector(IntrospectorConfig{Endpoint: srv.URL + "/introspect", ClientID: "certbind"})
	if _, err := in.Introspect(t.Context(), "tok", t0); err != nil {
		t.Fatal(err)
	}
	r, form := srv.last()
	if h, ok := r.Header["Authorization"]; ok {
		t.Errorf("Authorization %q sent with mutual TLS", h)
	}
	if form.Get("client_id") != "certbind" || form.Get("token") != "tok" || len(form) != 3 {
		t.Errorf("form %v, want token, token_type_hint and client_id", form)
	}
}

func TestIntrospectResponses(t *testing.T) {
	const maxBytes = 512
	tests := []struct {
		name   string
		status int
		body   string
		kind   Kind  // "" for an active token
		is     error // errors.Is target
	}{
		{"active", 200, activeAnswer(""), "", nil},
		{"active without exp", 200, `{"active":true,"client_id":"billing"}`, "", nil},
		{"active with scp", 200, `{"active":true,"scp":["read"]}`, "", nil},
		{"active, exactly MaxBytes", 200, padTo(`{"active":true}`, maxBytes), "", nil},

		{"inactive", 200, `{"active":false}`, KindInactive, nil},
		{"inactive with claims", 200, `{"active":false,"exp":1}`, KindInactive, nil},

		{"active a string", 200, `{"active":"true"}`, KindUnavailable, nil},
		{"active a number", 200, `{"active":1}`, KindUnavailable, nil},
		{"active null", 200, `{"active":null}`, KindUnavailable, nil},
		{"active missing", 200, `{"client_id":"billing"}`, KindUnavailable, nil},
		{"active twice", 200, `{"active":false,"active":true}`, KindUnavailable, nil},
		{"duplicate inside cnf", 200, `{"active":true,"cnf":{"x5t#S256":"a","x5t#S256":"b"}}`, KindUnavailable, nil},
		{"40 levels deep", 200, `{"active":true,"x":` + nested(39) + `}`, KindUnavailable, nil},
		{"not JSON", 200, `<html>`, KindUnavailable, nil},
		{"an array", 200, `[{"active":true}]`, KindUnavailable, nil},
		{"trailing data", 200, `{"active":true}{"active":false}`, KindUnavailable, nil},
		{"empty", 200, ``, KindUnavailable, nil},
		{"larger than MaxBytes", 200, padTo(`{"active":true}`, maxBytes+1), KindUnavailable, nil},
		{"HTTP 401", 401, `{"error":"invalid_client"}`, KindUnavailable, nil},
		{"HTTP 500", 500, activeAnswer(""), KindUnavailable, nil},
		// RFC 7662 / RFC 6749 section 5.2 error answers: about the token, or about certbind.
		{"HTTP 400 unsupported_token_type", 400, `{"error":"unsupported_token_type","error_description":"x"}`, KindRejected, nil},
		{"HTTP 400 invalid_request", 400, `{"error":"invalid_request"}`, KindRejected, nil},
		{"HTTP 400 invalid_client", 400, `{"error":"invalid_client"}`, KindUnavailable, nil},
		{"HTTP 400 unauthorized_client", 400, `{"error":"unauthorized_client"}`, KindUnavailable, nil},
		{"HTTP 400 without an OAuth error", 400, `<html>bad request</html>`, KindUnavailable, nil},
		{"HTTP 400 with a control character in the error", 400, "{\"error\":\"a\\nb\"}", KindUnavailable, nil},
		{"HTTP 403", 403, `{"error":"access_denied"}`, KindUnavailable, nil},
		{"HTTP 429", 429, `{"error":"slow_down"}`, KindUnavailable, nil},
		{"HTTP 503 with an OAuth error", 503, `{"error":"temporarily_unavailable"}`, KindUnavailable, nil},

		{"expired", 200, `{"active":true,"exp":` + fmt.Sprint(t0.Add(-time.Second).Unix()) + `}`, KindExpired, nil},
		{"not yet valid", 200, `{"active":true,"nbf":` + fmt.Sprint(t0.Add(time.Second).Unix()) + `}`, KindNotYetValid, nil},
		{"aud a number", 200, `{"active":true,"aud":5}`, KindMalformed, nil},
		{"cnf not an object", 200, `{"active":true,"cnf":"x"}`, KindMalformed, ErrConfirmation},
		{"exp a string", 200, `{"active":true,"exp":"soon"}`, KindMalformed, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newIntrospection(t)
			srv.setStatus(tt.status)
			srv.answer("tok", tt.body)
			in := NewIntrospector(IntrospectorConfig{Endpoint: srv.URL, MaxBytes: maxBytes})
			c, err := in.Introspect(t.Context(), "tok", t0)
			if tt.kind == "" {
				if err != nil || c == nil {
					t.Fatalf("Introspect = %v, %v; want claims", c, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Introspect accepted it: %+v", *c)
			}
			if c != nil {
				t.Errorf("claims returned with error %v", err)
			}
			if KindOf(err) != tt.kind {
				t.Errorf("kind %q (%v), want %q", KindOf(err), err, tt.kind)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
}

// TestIntrospectIssuerAudience: with Issuer and Audiences configured, an active token from
// another issuer or for another resource is refused; without them, iss and aud are not checked.
func TestIntrospectIssuerAudience(t *testing.T) {
	srv := newIntrospection(t)
	answer := func(iss, aud string) string {
		return fmt.Sprintf(`{"active":true,"iss":%q,"aud":%s}`, iss, aud)
	}
	srv.answer("ours", answer(testIssuer, `["other",`+fmt.Sprintf("%q", testAudience)+`]`))
	srv.answer("other-iss", answer("https://other.example", fmt.Sprintf("%q", testAudience)))
	srv.answer("other-aud", answer(testIssuer, `"https://other-api.example"`))
	srv.answer("no-aud", fmt.Sprintf(`{"active":true,"iss":%q}`, testIssuer))
	strict := NewIntrospector(IntrospectorConfig{Endpoint: srv.URL, Issuer: testIssuer, Audiences: []string{testAudience}})
	lax := NewIntrospector(IntrospectorConfig{Endpoint: srv.URL})
	for _, tt := range []struct {
		tok  string
		in   *Introspector
		kind Kind // "" allows
		msg  string
	}{
		{"ours", strict, "", ""},
		{"other-iss", strict, KindIssuer, `introspection: iss "https://other.example", want "` + testIssuer + `"`},
		{"other-aud", strict, KindAudience, `introspection: aud ["https://other-api.example"] holds none of ["` + testAudience + `"]`},
		{"no-aud", strict, KindAudience, "holds none of"},
		{"other-iss", lax, "", ""},
		{"other-aud", lax, "", ""},
	} {
		_, err := tt.in.Introspect(t.Context(), tt.tok, t0)
		if KindOf(err) != tt.kind || (tt.msg != "" && !strings.Contains(fmt.Sprint(err), tt.msg)) {
			t.Errorf("%s (strict %v): %v, want kind %q %q", tt.tok, tt.in == strict, err, tt.kind, tt.msg)
		}
	}
}

// padTo pads a JSON object with trailing whitespace to n bytes.
func padTo(obj string, n int) string { return obj + strings.Repeat(" ", n-len(obj)) }

func TestIntrospectClaims(t *testing.T) {
	srv := newIntrospection(t)
	srv.answer("tok", activeAnswer(`,"scope":"read write","nbf":`+fmt.Sprint(t0.Unix())))
	in := NewIntrospector(IntrospectorConfig{Endpoint: srv.URL})
	_, err := in.Introspect(t.Context(), "tok", t0)
	if err == nil || KindOf(err) != KindUnavailable {
		// activeAnswer already holds scope: the duplicate must be refused.
		t.Fatalf("duplicate scope: %v, want %q", err, KindUnavailable)
	}
	srv.answer("tok2", fmt.Sprintf(`{"active":true,"iss":%q,"sub":"user-1","azp":"billing","aud":["a",%q],"scp":["read","write"],"exp":%d.5,"nbf":%d,"cnf":{"x5t#S256":%q,"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}`,
		testIssuer, testAudience, t0.Add(time.Hour).Unix(), t0.Unix(), testX5t))
	c, err := in.Introspect(t.Context(), "tok2", t0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Confirmation != nil {
		slices.Sort(c.Confirmation.Members)
	}
	want := Claims{Issuer: testIssuer, Subject: "user-1", ClientID: "billing", Audience: []string{"a", testAudience},
		Scopes: []string{"read", "write"}, Expiry: t0.Add(time.Hour + 500*time.Millisecond), NotBefore: t0,
		Confirmation: &Confirmation{X5tS256: testX5t, JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", Members: []string{"jkt", "x5t#S256"}}}
	if !claimsEqual(c, &want) {
		t.Errorf("claims\n got %+v\nwant %+v", *c, want)
	}
}

// TestIntrospectCache: answers are cached by the token's SHA-256 for CacheTTL but never past the
// token's exp; failures are not cached. Time is the now passed in.
func TestIntrospectCache(t *testing.T) {
	srv := newIntrospection(t)
	var onCall []error
	var mu sync.Mutex
	in := NewIntrospector(IntrospectorConfig{Endpoint: srv.URL, CacheTTL: time.Minute, OnCall: func(err error) {
		mu.Lock()
		onCall = append(onCall, err)
		mu.Unlock()
	}})
	shortExp := t0.Add(20 * time.Second)
	srv.answer("long", activeAnswer(""))
	srv.answer("short", fmt.Sprintf(`{"active":true,"exp":%d}`, shortExp.Unix()))

	steps := []struct {
		name      string
		token     string
		now       time.Time
		setup     func()
		kind      Kind
		wantCalls int64
	}{
		{"first use calls", "long", t0, nil, "", 1},
		{"cached", "long", t0.Add(59 * time.Second), nil, "", 1},
		{"CacheTTL over: calls again", "long", t0.Add(time.Minute), nil, "", 2},
		{"cached again from the new call", "long", t0.Add(90 * time.Second), nil, "", 2},

		{"short-lived token", "short", t0, nil, "", 3},
		{"cached before exp", "short", shortExp.Add(-time.Nanosecond), nil, "", 3},
		// The server has since revoked it; a cache entry living past exp would still allow it.
		{"at exp the entry is gone", "short", shortExp, func() { srv.answer("short", `{"active":false}`) }, KindInactive, 4},
		{"inactive is cached too", "short", shortExp.Add(time.Second), nil, KindInactive, 4},

		{"failure", "flaky", t0, func() { srv.setStatus(http.StatusBadGateway) }, KindUnavailable, 5},
		{"failure not cached", "flaky", t0, nil, KindUnavailable, 6},
		{"recovered", "flaky", t0, func() { srv.setStatus(http.StatusOK); srv.answer("flaky", `{"active":true,"aud":1}`) }, KindMalformed, 7},
		{"malformed claims not cached", "flaky", t0, func() { srv.answer("flaky", `{"active":true}`) }, "", 8},
		{"then cached", "flaky", t0, nil, "", 8},
	}
	for _, st := range steps {
		if st.setup != nil {
			st.setup()
		}
		_, err := in.Introspect(t.Context(), st.token, st.now)
		if KindOf(err) != st.kind || (st.kind == "") != (err == nil) {
			t.Errorf("%s: error %v, want kind %q", st.name, err, st.kind)
		}
		if n := srv.calls.Load(); n != st.wantCalls {
			t.Fatalf("%s: %d endpoint calls, want %d", st.name, n, st.wantCalls)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(onCall) != 8 {
		t.Errorf("OnCall called %d times, want once per endpoint call (8)", len(onCall))
	}
	// An answer whose claims are unusable is reported too, as the token's error.
	wantKinds := []Kind{"", "", "", "", KindUnavailable, KindUnavailable, KindMalformed, ""}
	for i, want := range wantKinds {
		if i < len(onCall) && (KindOf(onCall[i]) != want || (want == "") != (onCall[i] == nil)) {
			t.Errorf("OnCall #%d: %v, want kind %q", i, onCall[i], want)
		}
	}
	// The cache holds the token's digest, never the token.
	for _, tok := range []string{"long", "short", "flaky"} {
		if _, ok := in.cache.Peek(sha256.Sum256([]byte(tok))); !ok {
			t.Errorf("no cache entry under SHA-256(%q)", tok)
		}
	}
}

// TestIntrospectCacheLeeway: within the leeway after exp the endpoint is asked again (the cache
// never outlives exp), and its answer decides.
func TestIntrospectCacheLeeway(t *testing.T) {
	srv := newIntrospection(t)
	exp := t0.Add(10 * time.Second)
	srv.answer("tok", fmt.Sprintf(`{"active":true,"exp":%d}`, exp.Unix()))
	in := NewIntrospector(IntrospectorConfig{Endpoint: srv.URL, Leeway: 5 * time.Second})
	for _, st := range []struct {
		now   time.Time
		kind  Kind
		calls int64
	}{
		{t0, "", 1},
		{exp.Add(-time.Second), "", 1},
		{exp.Add(4 * time.Second), "", 2},
		{exp.Add(6 * time.Second), KindExpired, 3},
	} {
		_, err := in.Introspect(t.Context(), "tok", st.now)
		if KindOf(err) != st.kind || (st.kind == "") != (err == nil) {
			t.Errorf("at %v: error %v, want kind %q", st.now, err, st.kind)
		}
		if n := srv.calls.Load(); n != st.calls {
			t.Errorf("at %v: %d calls, want %d", st.now, n, st.calls)
		}
	}
}

// TestIntrospectTimeout: a hanging endpoint costs at most Timeout, or the caller's deadline.
func TestIntrospectTimeout(t *testing.T) {
	srv := newIntrospection(t)
	release := make(chan struct{})
	srv.mu.Lock()
	srv.release = release
	srv.mu.Unlock()
	t.Cleanup(func() { close(release) })

	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		timeout time.Duration
	}{
		{"Timeout", t.Context(), 100 * time.Millisecond},
		{"caller's deadline", short, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := NewIntrospector(IntrospectorConfig{Endpoint: srv.URL, Timeout: tt.timeout})
			start := time.Now()
			_, err := in.Introspect(tt.ctx, "tok", t0)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("returned after %v", d)
			}
			if KindOf(err) != KindUnavailable || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v, want %q from context.DeadlineExceeded", err, KindUnavailable)
			}
		})
	}
}

func TestIntrospectBadEndpoint(t *testing.T) {
	in := NewIntrospector(IntrospectorConfig{Endpoint: "http://[::1"})
	_, err := in.Introspect(t.Context(), "tok", t0)
	if KindOf(err) != KindUnavailable {
		t.Errorf("error %v, want %q", err, KindUnavailable)
	}
}

// TestIntrospectSharedCall: concurrent requests with the same uncached token make one call, and
// all get its answer.
func TestIntrospectSharedCall(t *testing.T) {
	srv := newIntrospection(t)
	srv.answer("tok", activeAnswer(""))
	release := make(chan struct{})
	srv.mu.Lock()
	srv.release = release
	srv.mu.Unlock()
	in := NewIntrospector(IntrospectorConfig{Endpoint: srv.URL, Timeout: 10 * time.Second})
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := in.Introspect(t.Context(), "tok", t0)
			errs <- err
		}()
	}
	for deadline := time.Now().Add(5 * time.Second); srv.calls.Load() == 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
	}
	time.Sleep(50 * time.Millisecond) // the other callers join the call in flight
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := srv.calls.Load(); got != 1 {
		t.Errorf("%d endpoint calls for %d concurrent requests of one token, want 1", got, n)
	}
}

// TestIntrospectRejectionCached: an error answer about the token is kept like active: false,
// so a junk token costs the authorization server one call, not one per request; a failure is
// not kept.
func TestIntrospectRejectionCached(t *testing.T) {
	srv := newIntrospection(t)
	srv.setStatus(400)
	srv.answer("junk", `{"error":"unsupported_token_type"}`)
	in := NewIntrospector(IntrospectorConfig{Endpoint: srv.URL})
	for range 3 {
		if _, err := in.Introspect(t.Context(), "junk", t0); KindOf(err) != KindRejected {
			t.Fatalf("%v, want a rejection", err)
		}
	}
	if n := srv.calls.Load(); n != 1 {
		t.Errorf("%d endpoint calls for a refused token, want 1", n)
	}
	srv.setStatus(500)
	for range 2 {
		if _, err := in.Introspect(t.Context(), "other", t0); KindOf(err) != KindUnavailable {
			t.Fatalf("%v, want unavailable", err)
		}
	}
	if n := srv.calls.Load(); n != 3 {
		t.Errorf("%d endpoint calls, want 3: failures are not cached", n)
	}
}
