package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/certbind/certbind/extauthz/xfcc"
	"github.com/certbind/certbind/testenv/pki"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// running is a certbind serve started in-process by run().
type running struct {
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
}

func startServe(t *testing.T, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), logs: &syncBuffer{b: &bytes.Buffer{}}}
	go func() { r.done <- run(ctx, append([]string{"serve"}, args...), io.Discard, r.logs) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
		r.done <- nil
	case <-time.After(15 * time.Second):
		t.Error("serve did not stop")
	}
}

func waitHTTP(t *testing.T, url string, want int) *http.Response {
	t.Helper()
	var last string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			last = err.Error()
			continue
		}
		if resp.StatusCode == want {
			return resp
		}
		last = resp.Status
		resp.Body.Close()
	}
	t.Fatalf("%s: %s, want %d", url, last, want)
	return nil
}

func TestServeHealthAndReadiness(t *testing.T) {
	c := newCLI(t)
	c.write(t, "live.yaml", []byte("clients: [\n")) // broken: certbind starts but is not ready
	grpcAddr, admin := freeAddr(t), freeAddr(t)
	startServe(t, "--config", c.path("live.yaml"), "--grpc-addr", grpcAddr, "--admin-addr", admin, "--wait-for-config")
	waitHTTP(t, "http://"+admin+"/healthz", 200).Body.Close()
	waitHTTP(t, "http://"+admin+"/readyz", 503).Body.Close()

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	st, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || st.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health before config: %v %v", st, err)
	}
	// A Check without configuration is certbind's own failure: an error, never an allow.
	if _, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), &authv3.CheckRequest{}); err == nil {
		t.Fatal("Check answered without a configuration")
	}

	data, _ := os.ReadFile(c.path("certbind.yaml"))
	c.write(t, "live.yaml", data)
	waitHTTP(t, "http://"+admin+"/readyz", 200).Body.Close()
	st, err = hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: authv3.Authorization_ServiceDesc.ServiceName})
	if err != nil || st.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health after config: %v %v", st, err)
	}
}

func TestServeMetricsMove(t *testing.T) {
	c := newCLI(t)
	grpcAddr, httpAddr, admin := freeAddr(t), freeAddr(t), freeAddr(t)
	startServe(t, "--config", c.path("certbind.yaml"), "--grpc-addr", grpcAddr, "--http-addr", httpAddr, "--admin-addr", admin)
	waitHTTP(t, "http://"+admin+"/readyz", 200).Body.Close()
	scrape := func() string {
		resp := waitHTTP(t, "http://"+admin+"/metrics", 200)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	before := scrape()
	for _, fam := range []string{"certbind_config_reloads_total", "certbind_config_last_reload_success_timestamp_seconds",
		"certbind_trust_anchor_expiry_days", "certbind_clients", "process_cpu_seconds_total"} {
		if !strings.Contains(before, fam) {
			t.Errorf("metric family %s missing", fam)
		}
	}
	// One allow and one deny through the HTTP endpoint.
	for _, cert := range []*pki.Cert{c.billing, c.reports} {
		req, _ := http.NewRequest("POST", "http://"+httpAddr+"/oauth2/token", strings.NewReader("client_id=billing"))
		req.Header.Set("content-type", "application/x-www-form-urlencoded")
		req.Header.Set("x-forwarded-client-cert", "Hash="+fmt.Sprintf("%x", cert.Thumbprint())+";Cert=\""+xfcc.EncodePEM(cert.PEM())+"\"")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// The same allowed request again: served from the caches.
	req, _ := http.NewRequest("POST", "http://"+httpAddr+"/oauth2/token", strings.NewReader("client_id=billing"))
	req.Header.Set("content-type", "application/x-www-form-urlencoded")
	req.Header.Set("x-forwarded-client-cert", "Hash="+fmt.Sprintf("%x", c.billing.Thumbprint())+";Cert=\""+xfcc.EncodePEM(c.billing.PEM())+"\"")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	after := scrape()
	for _, want := range []string{
		`certbind_cache_events_total{cache="certificates",event="hit"} 1`,
		`certbind_cache_events_total{cache="chains",event="hit"} 1`,
	} {
		if !strings.Contains(after, want) {
			t.Errorf("after a repeated check, /metrics lacks %s", want)
		}
	}
	for _, want := range []string{
		`certbind_decisions_total{mode="client_auth",reason="ok",result="allow"} 2`,
		`certbind_decisions_total{mode="client_auth",reason="certificate_not_bound",result="deny"} 1`,
		`certbind_decision_duration_seconds_count{mode="client_auth"} 3`,
		`certbind_client_certificate_expiry_days_count 3`,
		`certbind_cache_events_total{cache="certificates",event="miss"} 2`,
		`certbind_cache_events_total{cache="chains",event="miss"} 2`,
	} {
		if !strings.Contains(after, want) {
			t.Errorf("after two checks, /metrics lacks %s", want)
		}
	}
}

func TestServeRefusesOtherCallers(t *testing.T) {
	c := newCLI(t)
	envoyCert := c.root.Leaf("envoy", pki.URI("spiffe://certbind.test/envoy"))
	intruder := c.root.Leaf("intruder", pki.URI("spiffe://certbind.test/intruder"))
	server := c.root.Leaf("certbind", pki.ServerAuth(), pki.DNS("certbind"), pki.IP("127.0.0.1"))
	c.write(t, "server.pem", server.PEM())
	c.write(t, "server-key.pem", server.KeyPEM())
	grpcAddr := freeAddr(t)
	startServe(t, "--config", c.path("certbind.yaml"), "--grpc-addr", grpcAddr, "--tls-cert", c.path("server.pem"),
		"--tls-key", c.path("server-key.pem"), "--tls-client-ca", c.path("ca.pem"), "--allowed-callers", "spiffe://certbind.test/envoy")
	roots := x509.NewCertPool()
	roots.AddCert(c.root.Cert)
	check := func(client *pki.Cert) error {
		tc := &tls.Config{RootCAs: roots, ServerName: "certbind"}
		if client != nil {
			tc.Certificates = []tls.Certificate{{Certificate: [][]byte{client.DER()}, PrivateKey: client.Key}}
		}
		conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err = authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{}, grpc.WaitForReady(false))
		return err
	}
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = check(envoyCert); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("Envoy refused: %v", err)
	}
	if err := check(intruder); err == nil {
		t.Error("a caller outside --allowed-callers got an answer")
	}
	if err := check(nil); err == nil {
		t.Error("a caller without a certificate got an answer")
	}
}

func TestServeUnixSocket(t *testing.T) {
	c := newCLI(t)
	sock := filepath.Join(t.TempDir(), "certbind.sock")
	startServe(t, "--config", c.path("certbind.yaml"), "--grpc-addr", "unix:"+sock)
	conn, err := grpc.NewClient("unix:"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{}, grpc.WaitForReady(true))
	if err != nil || resp.GetDeniedResponse() == nil {
		t.Fatalf("%v %v", resp, err)
	}
}

func TestServeDrainsInFlightChecks(t *testing.T) {
	// Checks that wait on a slow introspection endpoint are in flight when SIGTERM arrives:
	// every one must still get its answer.
	const n = 20
	c := newCLI(t)
	var arrived atomic.Int32
	waiting := make(chan struct{}) // closed when all n checks are waiting on the endpoint
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("token") != "" && arrived.Add(1) == n {
			close(waiting)
		}
		time.Sleep(400 * time.Millisecond)
		fmt.Fprint(w, `{"active":true}`)
	}))
	defer slow.Close()
	data, _ := os.ReadFile(c.path("certbind.yaml"))
	c.write(t, "slow.yaml", append(data, []byte("tokens:\n  introspection: {endpoint: "+slow.URL+", client_id: c, client_secret: s, timeout: 2s}\n  issuers: []\n")...))
	grpcAddr := freeAddr(t)
	r := startServe(t, "--config", c.path("slow.yaml"), "--grpc-addr", grpcAddr, "--drain-timeout", "5s")
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	// Connected and serving before the load starts.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := client.Check(ctx, &authv3.CheckRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
				ContextExtensions: map[string]string{"certbind_mode": "bound_token"},
				Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
					Path: "/api/x", Headers: map[string]string{"authorization": fmt.Sprintf("Bearer opaque-%d", i)}}}}}
			resp, err := client.Check(context.Background(), req)
			if err != nil {
				errs <- err
				return
			}
			if resp.GetStatus().GetMessage() != "token_unbound" {
				errs <- fmt.Errorf("check %d: %s", i, resp.GetStatus().GetMessage())
			}
		}(i)
	}
	select {
	case <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatalf("%d of %d checks reached the introspection endpoint", arrived.Load(), n)
	}
	r.cancel() // what SIGTERM does through signal.NotifyContext
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("lost in shutdown: %v", err)
	}
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
		r.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not exit")
	}
}

func TestServeReloadsTLSFiles(t *testing.T) {
	old := tlsRecheck
	tlsRecheck = time.Nanosecond // check the files on every handshake
	defer func() { tlsRecheck = old }()
	c := newCLI(t)
	first := c.root.Leaf("certbind", pki.ServerAuth(), pki.DNS("certbind"))
	c.write(t, "server.pem", first.PEM())
	c.write(t, "server-key.pem", first.KeyPEM())
	grpcAddr := freeAddr(t)
	startServe(t, "--config", c.path("certbind.yaml"), "--grpc-addr", grpcAddr, "--tls-cert", c.path("server.pem"), "--tls-key", c.path("server-key.pem"))
	roots := x509.NewCertPool()
	roots.AddCert(c.root.Cert)
	serverSerial := func() string {
		var conn *tls.Conn
		var err error
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if conn, err = tls.Dial("tcp", grpcAddr, &tls.Config{RootCAs: roots, ServerName: "certbind", NextProtos: []string{"h2"}}); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
			t.Errorf("ALPN %q, want h2", p)
		}
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	if got := serverSerial(); got != first.Cert.SerialNumber.String() {
		t.Fatalf("serving %s", got)
	}
	second := c.root.Leaf("certbind", pki.ServerAuth(), pki.DNS("certbind"))
	c.write(t, "server-key.pem", second.KeyPEM())
	c.write(t, "server.pem", second.PEM())
	if got := serverSerial(); got != second.Cert.SerialNumber.String() {
		t.Fatalf("after rotation still serving %s", got)
	}
}

func TestTuneRuntime(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	tuneRuntime(serveFlags{gcPercent: 300, memoryLimit: 64})
	if got := debug.SetGCPercent(100); got != 300 {
		t.Errorf("GOGC %d, want 300", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 64<<20 {
		t.Errorf("memory limit %d, want 64 MiB", got)
	}
	// The environment wins.
	t.Setenv("GOGC", "50")
	debug.SetGCPercent(50)
	tuneRuntime(serveFlags{gcPercent: 300})
	if got := debug.SetGCPercent(100); got != 50 {
		t.Errorf("GOGC %d, want the environment's 50", got)
	}
}

// dialHTTP opens a raw connection to the HTTP endpoint once serve listens on it.
func dialHTTP(t *testing.T, addr string) net.Conn {
	t.Helper()
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var c net.Conn
		if c, err = net.Dial("tcp", addr); err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
	}
	t.Fatalf("HTTP endpoint %s: %v", addr, err)
	return nil
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
	c := newCLI(t)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(4 * timeout)
		fmt.Fprint(w, `{"active":true}`)
	}))
	defer slow.Close()
	data, _ := os.ReadFile(c.path("certbind.yaml"))
	c.write(t, "slow.yaml", append(data, []byte("  - {path_prefix: /api/, mode: bound_token}\n"+
		"tokens:\n  introspection: {endpoint: "+slow.URL+", client_id: c, client_secret: s, timeout: 5s}\n  issuers: []\n")...))
	httpAddr := freeAddr(t)
	startServe(t, "--config", c.path("slow.yaml"), "--grpc-addr", freeAddr(t), "--http-addr", httpAddr,
		"--http-read-timeout", timeout.String(), "--http-write-timeout", timeout.String(), "--http-idle-timeout", timeout.String())

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

// TestServeHTTPEndpointConnectionLimit: with --http-max-conns 2, a third connection waits
// until one of the first two closes.
func TestServeHTTPEndpointConnectionLimit(t *testing.T) {
	c := newCLI(t)
	httpAddr := freeAddr(t)
	startServe(t, "--config", c.path("certbind.yaml"), "--grpc-addr", freeAddr(t), "--http-addr", httpAddr, "--http-max-conns", "2")
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

func TestServeHTTPEndpointFlags(t *testing.T) {
	c := newCLI(t)
	_, _, help := runCLI("serve", "-h")
	for _, f := range []string{"-http-read-timeout", "-http-write-timeout", "-http-idle-timeout", "-http-max-conns"} {
		if !strings.Contains(help, f) {
			t.Errorf("serve -h does not list %s", f)
		}
		v := "-1s"
		if f == "-http-max-conns" {
			v = "-1"
		}
		if code, _, errs := runCLI("serve", "--config", c.path("certbind.yaml"), "-"+f, v); code != 2 || !strings.Contains(errs, "cannot be negative") {
			t.Errorf("%s %s: exit %d %s, want 2", f, v, code, errs)
		}
	}
	// A read timeout shorter than the header timeout bounds the headers too.
	s := httpAuthzServer(http.NotFoundHandler(), httpLimits{readTimeout: time.Second, writeTimeout: 2 * time.Second, idleTimeout: 3 * time.Second})
	if s.ReadHeaderTimeout != time.Second || s.ReadTimeout != time.Second || s.WriteTimeout != 2*time.Second || s.IdleTimeout != 3*time.Second {
		t.Errorf("server timeouts: header %s read %s write %s idle %s", s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout)
	}
}

// TestServeLogsConfigWarnings: what validate warns about, serve logs at every load.
func TestServeLogsConfigWarnings(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "certbind.yaml")
	if err := os.WriteFile(path, []byte("routes:\n  - {path_prefix: /api/admin/, mode: identity}\n  - {path_prefix: /api/, mode: identity}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	log, hook := logtest.NewNullLogger()
	if _, err := newServer(serveFlags{config: path}, log); err != nil {
		t.Fatal(err)
	}
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.WarnLevel && strings.Contains(e.Message, `routes[0].path_prefix: "/api/admin/" does not cover "/api/admin"`) {
			return
		}
	}
	t.Fatalf("no warning logged: %v", hook.AllEntries())
}
