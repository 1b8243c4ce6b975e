// Package demo is `make demo`: the whole certbind flow on this machine, with no Docker and no
// Envoy. It starts the in-process test bed (package stack), then a scripted client obtains
// certificate-bound tokens with tls_client_auth and self_signed_tls_client_auth, calls the API
// with them, and tries every way in that must fail: a token replayed with another certificate,
// another client's client_id, a forged x-forwarded-client-cert, an expired and an untrusted
// certificate. It prints a table of step, expected and got, and fails if any step differs.
package demo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/certbind/certbind/testenv/stack"
	"github.com/certbind/certbind/testenv/testbed"
)

// Step is one scripted call and the outcome it must have.
type Step struct {
	Name   string
	Want   string // "200", "401 invalid_client", "TLS refused", ...
	Got    string
	Detail string
}

// OK reports whether the step went as expected.
func (s Step) OK() bool { return s.Want == s.Got }

// Run runs the demo against a fresh stack and writes the table to out.
func Run(out io.Writer) ([]Step, error) {
	s, err := stack.Start(stack.Options{})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	steps, err := Script(s)
	if err != nil {
		return steps, err
	}
	Print(out, steps)
	for _, st := range steps {
		if !st.OK() {
			return steps, errors.New("demo: a step did not go as expected")
		}
	}
	return steps, nil
}

// Print writes the steps as a table.
func Print(out io.Writer, steps []Step) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tEXPECTED\tGOT\t")
	for _, st := range steps {
		mark := "ok"
		if !st.OK() {
			mark = "MISMATCH"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s %s\n", st.Name, st.Want, st.Got, mark, st.Detail)
	}
	tw.Flush()
	pass := 0
	for _, st := range steps {
		if st.OK() {
			pass++
		}
	}
	fmt.Fprintf(out, "\n%d passed, %d failed\n", pass, len(steps)-pass)
}

// Script runs the scripted client against a running stack.
func Script(s *stack.Stack) ([]Step, error) {
	c := &caller{s: s, clients: map[string]*http.Client{}}
	for _, name := range testbed.Clients() {
		cl, err := s.Client(name)
		if err != nil {
			return nil, err
		}
		c.clients[name] = cl
	}
	var steps []Step
	add := func(name, want string, o outcome) {
		steps = append(steps, Step{Name: name, Want: want, Got: o.summary, Detail: o.detail})
	}

	billingTok, o := c.token(testbed.Billing, s.FrontURL, "billing", "read")
	add("billing gets a token (tls_client_auth, subject DN)", "200", o)
	partnerTok, o := c.token(testbed.Partner, s.SelfURL, "partner", "read")
	add("partner gets a token (self_signed_tls_client_auth)", "200", o)
	_, o = c.token(testbed.Reports, s.FrontURL, "reports", "read")
	add("reports gets a token (tls_client_auth, URI SAN)", "200", o)

	add("billing calls the API with its bound token", "200 sub=billing", c.api(testbed.Billing, s.FrontURL, "/api/orders", billingTok, nil))
	add("partner calls the API with its bound token", "200 sub=partner", c.api(testbed.Partner, s.SelfURL, "/api/orders", partnerTok, nil))
	add("billing's token replayed with reports' certificate", "401 invalid_token", c.api(testbed.Reports, s.FrontURL, "/api/orders", billingTok, nil))
	add("API call without a token", "401 Bearer challenge", c.api(testbed.Billing, s.FrontURL, "/api/orders", "", nil))
	add("billing's token on an admin route (scope read only)", "403 insufficient_scope", c.api(testbed.Billing, s.FrontURL, "/api/admin/users", billingTok, nil))
	add("billing's token on the bare admin path (path_separated_prefix)", "403 insufficient_scope", c.api(testbed.Billing, s.FrontURL, "/api/admin?x=1", billingTok, nil))

	_, o = c.token(testbed.Reports, s.FrontURL, "billing", "read")
	add("reports' certificate claims client_id billing", "401 invalid_client", o)
	forged := "Hash=" + strings.Repeat("0", 64) + ";Subject=\"CN=billing,OU=Payments,O=Example Corp,C=SE\""
	_, o = c.tokenWith(testbed.Reports, s.FrontURL, "billing", "read", map[string]string{"x-forwarded-client-cert": forged})
	add("forged x-forwarded-client-cert is replaced by Envoy", "401 invalid_client", o)
	_, o = c.token(testbed.Expired, s.FrontURL, "billing", "read")
	add("expired certificate", "TLS refused", o)
	_, o = c.token(testbed.Untrusted, s.FrontURL, "billing", "read")
	add("certificate from an untrusted CA", "TLS refused", o)
	_, o = c.token(testbed.Partner, s.SelfURL, "billing", "read")
	add("self-signed certificate claims a PKI client", "401 invalid_client", o)

	add("inventory calls an internal service (identity)", "200 client=inventory", c.api(testbed.Inventory, s.FrontURL, "/internal/stock", "", nil))
	add("a client-sent x-certbind-client-id never arrives", "200 client=inventory", c.api(testbed.Inventory, s.FrontURL, "/internal/stock", "", map[string]string{"x-certbind-client-id": "admin"}))
	return steps, nil
}

type caller struct {
	s       *stack.Stack
	clients map[string]*http.Client
}

type outcome struct{ summary, detail string }

func (c *caller) token(cert, base, clientID, scope string) (string, outcome) {
	return c.tokenWith(cert, base, clientID, scope, nil)
}

func (c *caller) tokenWith(cert, base, clientID, scope string, hdr map[string]string) (string, outcome) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "scope": {scope}}
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, body, err := c.do(cert, req)
	if err != nil {
		return "", outcome{"TLS refused", shorten(err.Error())}
	}
	if resp.StatusCode != http.StatusOK {
		return "", errorOutcome(resp, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(body, &tr) != nil || tr.AccessToken == "" {
		return "", outcome{"200 without a token", ""}
	}
	return tr.AccessToken, outcome{"200", "token bound to " + cert + "'s certificate"}
}

func (c *caller) api(cert, base, path, tok string, hdr map[string]string) outcome {
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, body, err := c.do(cert, req)
	if err != nil {
		return outcome{"TLS refused", shorten(err.Error())}
	}
	if resp.StatusCode != http.StatusOK {
		return errorOutcome(resp, body)
	}
	var echo struct {
		Headers map[string]string `json:"headers"`
	}
	if err := json.Unmarshal(body, &echo); err != nil {
		return outcome{"200 unreadable", err.Error()}
	}
	if sub := echo.Headers["x-certbind-subject"]; sub != "" {
		return outcome{"200 sub=" + sub, "scope " + echo.Headers["x-certbind-scope"]}
	}
	return outcome{"200 client=" + echo.Headers["x-certbind-client-id"], ""}
}

func (c *caller) do(cert string, req *http.Request) (*http.Response, []byte, error) {
	resp, err := c.clients[cert].Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, body, err
}

func errorOutcome(resp *http.Response, body []byte) outcome {
	var e struct {
		Error string `json:"error"`
		Desc  string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &e)
	switch {
	case e.Error != "":
		return outcome{fmt.Sprintf("%d %s", resp.StatusCode, e.Error), e.Desc}
	case resp.StatusCode == http.StatusUnauthorized && strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer"):
		return outcome{"401 Bearer challenge", resp.Header.Get("WWW-Authenticate")}
	}
	return outcome{fmt.Sprint(resp.StatusCode), shorten(string(body))}
}

func shorten(s string) string {
	if len(s) > 90 {
		return s[:90] + "..."
	}
	return s
}
