package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ModeHeader carries the mode to certbind's HTTP endpoint when http_authz.mode_header names it;
// without that, certbind's routes decide, as they do for the bench fixture.
const ModeHeader = "x-certbind-mode"

// HTTPClient sends authorization requests to an HTTP endpoint (Envoy http_service, nginx
// auth_request) over HTTP/1.1 keep-alive connections, one per concurrent request.
type HTTPClient struct {
	client *http.Client
	base   *url.URL
}

// NewHTTPClient makes a client for the endpoint at addr (host:port, plaintext) that keeps up
// to conns connections open.
func NewHTTPClient(addr string, conns int) *HTTPClient {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}
	return &HTTPClient{client: &http.Client{Transport: tr}, base: &url.URL{Scheme: "http", Host: addr}}
}

// Close closes the idle connections.
func (c *HTTPClient) Close() { c.client.CloseIdleConnections() }

// HTTPRequest is a Request prepared for the HTTP endpoint; it is read-only and shared.
type HTTPRequest struct {
	method string
	url    *url.URL
	header http.Header
	body   []byte
}

// Prepare turns r into the request a proxy sends to the HTTP endpoint: the original method,
// path and headers (the mode in ModeHeader), and the body.
func (c *HTTPClient) Prepare(r Request) *HTTPRequest {
	u := *c.base
	u.Path = r.Path
	h := make(http.Header, len(r.Headers)+1)
	for k, v := range r.Headers {
		if k == "content-length" {
			continue // the transport writes it from ContentLength
		}
		h[http.CanonicalHeaderKey(k)] = []string{v}
	}
	h.Set(ModeHeader, string(r.Mode))
	return &HTTPRequest{method: r.Method, url: &u, header: h, body: r.Body}
}

// Do sends r. 200 allows; 401 and 403 are denials; anything else is an error.
func (c *HTTPClient) Do(ctx context.Context, r *HTTPRequest) error {
	req := (&http.Request{
		Method:     r.method,
		URL:        r.url,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     r.header, // the transport only reads it
		Host:       Host,
	}).WithContext(ctx)
	if len(r.body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(r.body))
		req.ContentLength = int64(len(r.body))
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return &DeniedError{Detail: "HTTP " + strconv.Itoa(resp.StatusCode) + ": " + resp.Header.Get("x-certbind-reason")}
	}
	return fmt.Errorf("bench: HTTP %d (%s)", resp.StatusCode, resp.Header.Get("x-certbind-reason"))
}

// Sender sends req(seq) for every call.
func (c *HTTPClient) Sender(req func(seq uint64) *HTTPRequest) Sender {
	return func(ctx context.Context, _ int, seq uint64) error {
		return c.Do(ctx, req(seq))
	}
}
