package server_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/certbind/certbind/server"
)

// dialHTTP opens a raw connection to the HTTP endpoint.
func dialHTTP(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("HTTP endpoint %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin asserts that the server closes c (EOF or reset, not our own deadline) within
// limit, and returns how long that took and what it sent first.
func closedWithin(t *testing.T, c net.Conn, r io.Reader, limit time.Duration) (time.Duration, string) {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(limit))
	got, err := io.ReadAll(r)
	took := time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %s (read %q)", limit, got)
	}
	return took, string(got)
}

// TestServeHTTPEndpointTimeouts: a caller that announces a body and stalls, one that idles on
// a kept-alive connection, and a decision slower than the write timeout all end with the
// connection closed.
func TestServeHTTPEndpointTimeouts(t *testing.T) {
	const timeout = 300 * time.Millisecond
	f := newFixture(t)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(4 * timeout)
		fmt.Fprint(w, `{"active":true}`)
	}))
	defer slow.Close()
	data, _ := os.ReadFile(f.path("certbind.yaml"))
	f.write(t, "slow.yaml", append(data, []byte("  - {path_prefix: /api/, mode: bound_token}\n"+
		"tokens:\n  introspection: {endpoint: "+slow.URL+", client_id: c, client_secret: s, timeout: 5s}\n  issuers: []\n")...))
	c := f.config("slow.yaml")
	c.HTTP = server.Endpoint{Addr: "127.0.0.1:0"}
	c.HTTPLimits = server.HTTPLimits{ReadTimeout: timeout, WriteTimeout: timeout, IdleTimeout: timeout}
	httpAddr := start(t, c).addrs.HTTP.String()

	t.Run("stalled body", func(t *testing.T) {
		conn := dialHTTP(t, httpAddr)
		fmt.Fprint(conn, "POST /oauth2/token HTTP/1.1\r\nHost: certbind\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
			"Content-Length: 1000000\r\n\r\nclient_id=billing")
		took, _ := closedWithin(t, conn, conn, 10*timeout)
		if took < timeout/2 {
			t.Errorf("closed after %s: before the read timeout, so not by it", took)
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		conn := dialHTTP(t, httpAddr)
		fmt.Fprint(conn, "GET /oauth2/token?client_id=billing HTTP/1.1\r\nHost: certbind\r\n\r\n")
		br := bufio.NewReader(conn)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || resp.Close {
			t.Fatalf("%s, close %v: want a kept-alive 401 (no certificate)", resp.Status, resp.Close)
		}
		closedWithin(t, conn, br, 10*timeout)
	})
	t.Run("decision slower than the write timeout", func(t *testing.T) {
		conn := dialHTTP(t, httpAddr)
		fmt.Fprint(conn, "GET /api/x HTTP/1.1\r\nHost: certbind\r\nAuthorization: Bearer opaque\r\n\r\n")
		if _, got := closedWithin(t, conn, conn, 10*timeout); got != "" {
			t.Errorf("answered after the write deadline: %q", got)
		}
	})
}

// TestServeHTTPEndpointConnectionLimit: with MaxConns 2, a third connection waits until one of
// the first two closes.
func TestServeHTTPEndpointConnectionLimit(t *testing.T) {
	f := newFixture(t)
	c := f.config("certbind.yaml")
	c.HTTP = server.Endpoint{Addr: "127.0.0.1:0"}
	c.HTTPLimits = server.HTTPLimits{MaxConns: 2}
	httpAddr := start(t, c).addrs.HTTP.String()
	type client struct {
		conn net.Conn
		br   *bufio.Reader
	}
	open := func() client {
		conn := dialHTTP(t, httpAddr)
		fmt.Fprint(conn, "GET /oauth2/token HTTP/1.1\r\nHost: certbind\r\n\r\n")
		return client{conn, bufio.NewReader(conn)}
	}
	answer := func(cl client, within time.Duration) (*http.Response, error) {
		cl.conn.SetReadDeadline(time.Now().Add(within))
		resp, err := http.ReadResponse(cl.br, nil)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	// Two kept-alive connections, each answered: they hold both places.
	first := open()
	for _, cl := range []client{first, open()} {
		if _, err := answer(cl, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	third := open()
	var ne net.Error
	if resp, err := answer(third, 300*time.Millisecond); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("a third connection was served: %v %v", resp, err)
	}
	first.conn.Close()
	if _, err := answer(third, 5*time.Second); err != nil {
		t.Fatalf("the third connection was not served after the first closed: %v", err)
	}
}
