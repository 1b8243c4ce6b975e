package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/certbind/certbind/extauthz/listener"
	"github.com/certbind/certbind/server"
	"github.com/certbind/certbind/testenv/pki"
)

func dial(t *testing.T, target string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestServeHealthAndReadiness(t *testing.T) {
	f := newFixture(t)
	f.write(t, "live.yaml", []byte("clients: [\n")) // broken: certbind starts but is not ready
	c := f.config("live.yaml")
	c.Admin = server.Endpoint{Addr: "127.0.0.1:0"}
	c.WaitForConfig = true
	r := start(t, c)
	admin := r.addrs.Admin.String()
	waitHTTP(t, "http://"+admin+"/healthz", 200).Body.Close()
	waitHTTP(t, "http://"+admin+"/readyz", 503).Body.Close()

	conn := dial(t, r.addrs.GRPC.String())
	hc := healthpb.NewHealthClient(conn)
	st, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || st.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health before config: %v %v", st, err)
	}
	// A Check without configuration is certbind's own failure: an error, never an allow.
	if _, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), &authv3.CheckRequest{}); err == nil {
		t.Fatal("Check answered without a configuration")
	}

	data, _ := os.ReadFile(f.path("certbind.yaml"))
	f.write(t, "live.yaml", data)
	waitHTTP(t, "http://"+admin+"/readyz", 200).Body.Close()
	st, err = hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: authv3.Authorization_ServiceDesc.ServiceName})
	if err != nil || st.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health after config: %v %v", st, err)
	}
}

// percentEncode encodes PEM text as Envoy writes it in x-forwarded-client-cert: every byte
// but letters, digits and '-' as %XX.
func percentEncode(pemText []byte) string {
	var b strings.Builder
	for _, c := range pemText {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// xfccCheck posts a client_auth request for billing to the HTTP endpoint, presenting cert.
func xfccCheck(t *testing.T, httpAddr string, cert *pki.Cert) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+httpAddr+"/oauth2/token", strings.NewReader("client_id=billing"))
	req.Header.Set("content-type", "application/x-www-form-urlencoded")
	req.Header.Set("x-forwarded-client-cert", "Hash="+fmt.Sprintf("%x", cert.Thumbprint())+";Cert=\""+percentEncode(cert.PEM())+"\"")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestServeMetricsMove(t *testing.T) {
	f := newFixture(t)
	c := f.config("certbind.yaml")
	c.HTTP = server.Endpoint{Addr: "127.0.0.1:0"}
	c.Admin = server.Endpoint{Addr: "127.0.0.1:0"}
	r := start(t, c)
	admin, httpAddr := r.addrs.Admin.String(), r.addrs.HTTP.String()
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
	// One allow and one deny through the HTTP endpoint, then the allowed request twice again:
	// the second sighting is admitted to the caches (package admission), the third served
	// from them.
	xfccCheck(t, httpAddr, f.billing)
	xfccCheck(t, httpAddr, f.reports)
	xfccCheck(t, httpAddr, f.billing)
	xfccCheck(t, httpAddr, f.billing)
	after := scrape()
	for _, want := range []string{
		`certbind_cache_events_total{cache="certificates",event="hit"} 1`,
		`certbind_cache_events_total{cache="chains",event="hit"} 1`,
		`certbind_decisions_total{mode="client_auth",reason="ok",result="allow"} 3`,
		`certbind_decisions_total{mode="client_auth",reason="certificate_not_bound",result="deny"} 1`,
		`certbind_decision_duration_seconds_count{mode="client_auth"} 4`,
		`certbind_client_certificate_expiry_days_count 4`,
		`certbind_cache_events_total{cache="certificates",event="miss"} 3`,
		`certbind_cache_events_total{cache="chains",event="miss"} 3`,
	} {
		if !strings.Contains(after, want) {
			t.Errorf("after four checks, /metrics lacks %s", want)
		}
	}
}

func TestServeUnixSocket(t *testing.T) {
	f := newFixture(t)
	sock := filepath.Join(t.TempDir(), "certbind.sock")
	c := f.config("certbind.yaml")
	c.GRPC = server.Endpoint{Addr: "unix:" + sock}
	start(t, c)
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket: %v %v", fi, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(dial(t, "unix:"+sock)).Check(ctx, &authv3.CheckRequest{}, grpc.WaitForReady(true))
	if err != nil || resp.GetDeniedResponse() == nil {
		t.Fatalf("%v %v", resp, err)
	}
}

// TestServeInjectedListener: a listener the caller opened is served, and closed by Run.
func TestServeInjectedListener(t *testing.T) {
	f := newFixture(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := f.config("certbind.yaml")
	c.GRPC = server.Endpoint{Listener: l}
	r := start(t, c)
	if r.addrs.GRPC.String() != l.Addr().String() {
		t.Fatalf("Addrs().GRPC %s, want %s", r.addrs.GRPC, l.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := authv3.NewAuthorizationClient(dial(t, l.Addr().String())).Check(ctx, &authv3.CheckRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	r.stop(t)
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("after Run, Accept: %v, want net.ErrClosed", err)
	}
}

// TestServeReloadRequest: a request on Config.Reload loads the file again, even when its
// change went unnoticed (polling off, the watcher has not fired yet).
func TestServeReloadRequest(t *testing.T) {
	f := newFixture(t)
	reload := make(chan struct{})
	c := f.config("certbind.yaml")
	c.Reload = reload
	log, hook := logtest.NewNullLogger()
	c.Logger = log
	start(t, c)
	loads := func() int {
		n := 0
		for _, e := range hook.AllEntries() {
			if e.Message == "configuration loaded" {
				n++
			}
		}
		return n
	}
	before := loads()
	select {
	case reload <- struct{}{}:
	case <-time.After(5 * time.Second):
		t.Fatal("the reload request was not taken")
	}
	for deadline := time.Now().Add(5 * time.Second); loads() == before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no load after the reload request")
		}
	}
}

func TestServeDrainsInFlightChecks(t *testing.T) {
	// Checks that wait on a slow introspection endpoint are in flight when Run's context ends
	// (SIGTERM in certbind serve): every one must still get its answer.
	const n = 20
	f := newFixture(t)
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
	data, _ := os.ReadFile(f.path("certbind.yaml"))
	f.write(t, "slow.yaml", append(data, []byte("tokens:\n  introspection: {endpoint: "+slow.URL+", client_id: c, client_secret: s, timeout: 5s}\n  issuers: []\n")...))
	// Timeouts far above the endpoint's 400 ms: a loaded machine (-race, parallel packages)
	// must not turn a slow answer into token_unverifiable or a drain cut short.
	c := f.config("slow.yaml")
	c.DrainTimeout = 10 * time.Second
	r := start(t, c)
	client := authv3.NewAuthorizationClient(dial(t, r.addrs.GRPC.String()))
	// Connected and serving before the load starts.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := client.Check(ctx, &authv3.CheckRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
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
		})
	}
	select {
	case <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatalf("%d of %d checks reached the introspection endpoint", arrived.Load(), n)
	}
	r.cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("lost in shutdown: %v", err)
	}
	r.stop(t)
}

// TestServeLogsConfigWarnings: what validate warns about, the Server logs at every load.
func TestServeLogsConfigWarnings(t *testing.T) {
	f := newFixture(t)
	f.write(t, "shadow.yaml", []byte("routes:\n  - {path_prefix: /api/admin/, mode: identity}\n  - {path_prefix: /api/, mode: identity}\n"))
	log, hook := logtest.NewNullLogger()
	c := f.config("shadow.yaml")
	c.Logger = log
	s, err := server.New(c)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.WarnLevel && strings.Contains(e.Message, `routes[0].path_prefix: "/api/admin/" does not cover "/api/admin"`) {
			return
		}
	}
	t.Fatalf("no warning logged: %v", hook.AllEntries())
}

// TestNewRefuses: what New refuses is ErrInvalid, and a listener it was given is closed.
func TestNewRefuses(t *testing.T) {
	f := newFixture(t)
	f.write(t, "bad.yaml", []byte("nope: 1\n"))
	f.write(t, "notpem.pem", []byte("not a certificate\n"))
	for _, tc := range []struct {
		name string
		edit func(*server.Config)
		want string
	}{
		{"config file", func(c *server.Config) { c.ConfigPath = f.path("bad.yaml") }, "nope: unknown key"},
		{"no config file", func(c *server.Config) { c.ConfigPath = "" }, "ConfigPath is required"},
		{"no gRPC listener", func(c *server.Config) { c.GRPC = server.Endpoint{} }, "GRPC needs"},
		{"key without cert", func(c *server.Config) { c.TLS = listener.Config{Key: f.path("notpem.pem")} }, "go together"},
		{"callers without CA", func(c *server.Config) {
			c.TLS = listener.Config{Cert: f.path("notpem.pem"), Key: f.path("notpem.pem"), AllowedCallers: "spiffe://x/envoy"}
		}, "AllowedCallers needs TLS.ClientCA"},
		{"TLS files", func(c *server.Config) { c.TLS = listener.Config{Cert: f.path("notpem.pem"), Key: f.path("notpem.pem")} }, "--tls-cert/--tls-key"},
		{"negative limit", func(c *server.Config) { c.HTTPLimits.MaxConns = -1 }, "cannot be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			given, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			c := f.config("certbind.yaml")
			c.Admin = server.Endpoint{Listener: given}
			tc.edit(&c)
			s, err := server.New(c)
			if !errors.Is(err, server.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want ErrInvalid with %q", err, tc.want)
			}
			if s != nil {
				t.Fatal("a Server with the error")
			}
			if _, err := given.Accept(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("the given listener is still open: %v", err)
			}
		})
	}
}

// TestNewBusyAddress: a listener that cannot be opened fails New, not as ErrInvalid, and the
// listeners already opened are closed again.
func TestNewBusyAddress(t *testing.T) {
	f := newFixture(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := f.config("certbind.yaml")
	c.GRPC = server.Endpoint{Listener: grpcLis}
	c.Admin = server.Endpoint{Addr: busy.Addr().String()}
	if _, err := server.New(c); err == nil || errors.Is(err, server.ErrInvalid) || !strings.Contains(err.Error(), "admin listener") {
		t.Fatalf("New: %v", err)
	}
	if _, err := grpcLis.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the gRPC listener is still open: %v", err)
	}
}
