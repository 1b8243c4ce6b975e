package soak

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/certbind/certbind/testenv/stack"
	"github.com/certbind/certbind/testenv/testbed"
)

// testCase is one kind of request with the answer it must get.
type testCase struct {
	name  string
	allow bool // the request must be let through
	run   func(c *runner) (status int, errCode string, err error)
	want  func(status int, errCode string, err error) bool
}

// runner sends the cases' requests through the stack.
type runner struct {
	s       *stack.Stack
	clients map[string]*http.Client
	tokens  map[string]string // client -> a bound token
}

// newRunner makes a client for each of the test bed's certificates and fetches a bound token
// for billing.
func newRunner(s *stack.Stack) (*runner, error) {
	r := &runner{s: s, clients: map[string]*http.Client{}, tokens: map[string]string{}}
	for _, name := range testbed.Clients() {
		c, err := s.Client(name)
		if err != nil {
			return nil, err
		}
		r.clients[name] = c
	}
	tok, err := fetchToken(r, testbed.Billing, "billing")
	if err != nil {
		return nil, err
	}
	r.tokens[testbed.Billing] = tok
	return r, nil
}

func (r *runner) post(cert, base, path string, form url.Values, hdr map[string]string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return r.do(cert, req)
}

func (r *runner) get(cert, base, path, bearer string, hdr map[string]string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	if bearer != "" {
		req.Header.Set("Authorization", bearer)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return r.do(cert, req)
}

func (r *runner) do(cert string, req *http.Request) (int, string, error) {
	resp, err := r.clients[cert].Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error string `json:"error"`
		Sub   string `json:"access_token"`
	}
	_ = json.Unmarshal(body, &e)
	if resp.StatusCode == http.StatusOK {
		// The echo API says who certbind said the caller is; a token response carries a token.
		var echo struct {
			Headers map[string]string `json:"headers"`
		}
		if json.Unmarshal(body, &echo) == nil && echo.Headers != nil {
			return resp.StatusCode, "client=" + echo.Headers["x-certbind-client-id"], nil
		}
		if e.Sub != "" {
			return resp.StatusCode, "token", nil
		}
	}
	return resp.StatusCode, e.Error, nil
}

func is(status int, code string) func(int, string, error) bool {
	return func(s int, c string, err error) bool { return err == nil && s == status && c == code }
}

// tlsRefused: the request failed at the connection, which the front proxy closed on the
// client's certificate. With TLS 1.3 the client learns it after its handshake, so requests
// sharing that HTTP/2 connection see the close in other words than the alert; but a proxy that
// is down (connection refused) or hangs (timeout) is broken, not strict, and fails the case.
func tlsRefused(_ int, _ string, err error) bool {
	var ne net.Error
	return err != nil && !errors.Is(err, syscall.ECONNREFUSED) && !(errors.As(err, &ne) && ne.Timeout())
}

func cases() []testCase {
	form := func(id string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "scope": {"read"}}
	}
	return []testCase{
		{"token: billing (subject DN)", true, func(c *runner) (int, string, error) {
			return c.post(testbed.Billing, c.s.FrontURL, "/oauth2/token", form("billing"), nil)
		}, is(200, "token")},
		{"token: partner (self-signed)", true, func(c *runner) (int, string, error) {
			return c.post(testbed.Partner, c.s.SelfURL, "/oauth2/token", form("partner"), nil)
		}, is(200, "token")},
		{"api: bound token with its certificate", true, func(c *runner) (int, string, error) {
			return c.get(testbed.Billing, c.s.FrontURL, "/api/orders", "Bearer "+c.tokens[testbed.Billing], nil)
		}, is(200, "client=billing")},
		// index 3 (restartProbe):
		{"identity: inventory", true, func(c *runner) (int, string, error) {
			return c.get(testbed.Inventory, c.s.FrontURL, "/internal/stock", "", map[string]string{"x-certbind-client-id": "billing"})
		}, is(200, "client=inventory")},
		{"deny: token replayed with another certificate", false, func(c *runner) (int, string, error) {
			return c.get(testbed.Reports, c.s.FrontURL, "/api/orders", "Bearer "+c.tokens[testbed.Billing], nil)
		}, is(401, "invalid_token")},
		{"deny: another client's client_id", false, func(c *runner) (int, string, error) {
			return c.post(testbed.Reports, c.s.FrontURL, "/oauth2/token", form("billing"), nil)
		}, is(401, "invalid_client")},
		{"deny: forged x-forwarded-client-cert", false, func(c *runner) (int, string, error) {
			return c.post(testbed.Reports, c.s.FrontURL, "/oauth2/token", form("billing"),
				map[string]string{"x-forwarded-client-cert": "Hash=" + strings.Repeat("a", 64)})
		}, is(401, "invalid_client")},
		{"deny: conflicting client_id", false, func(c *runner) (int, string, error) {
			return c.post(testbed.Billing, c.s.FrontURL, "/oauth2/token?client_id=reports", form("billing"), nil)
		}, is(400, "invalid_request")},
		{"deny: no token", false, func(c *runner) (int, string, error) {
			return c.get(testbed.Billing, c.s.FrontURL, "/api/orders", "", nil)
		}, is(401, "")},
		{"deny: tampered token", false, func(c *runner) (int, string, error) {
			return c.get(testbed.Billing, c.s.FrontURL, "/api/orders", "Bearer "+c.tokens[testbed.Billing]+"A", nil)
		}, is(401, "invalid_token")},
		{"deny: two Authorization values", false, func(c *runner) (int, string, error) {
			return c.get(testbed.Billing, c.s.FrontURL, "/api/orders", "Bearer a, Bearer b", nil)
		}, is(400, "invalid_request")},
		{"deny: insufficient scope", false, func(c *runner) (int, string, error) {
			return c.get(testbed.Billing, c.s.FrontURL, "/api/admin/users", "Bearer "+c.tokens[testbed.Billing], nil)
		}, is(403, "insufficient_scope")},
		{"deny: self-signed certificate for a PKI client", false, func(c *runner) (int, string, error) {
			return c.post(testbed.Partner, c.s.SelfURL, "/oauth2/token", form("billing"), nil)
		}, is(401, "invalid_client")},
		{"deny: expired certificate (TLS)", false, func(c *runner) (int, string, error) {
			return c.get(testbed.Expired, c.s.FrontURL, "/internal/stock", "", nil)
		}, tlsRefused},
	}
}

func fetchToken(r *runner, cert, id string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "scope": {"read"}}
	req, _ := http.NewRequest(http.MethodPost, r.s.FrontURL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := r.clients[cert].Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("soak: no token for %s (HTTP %d)", id, resp.StatusCode)
	}
	return tr.AccessToken, nil
}
