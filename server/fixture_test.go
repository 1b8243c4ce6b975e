package server_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/certbind/certbind/server"
	"github.com/certbind/certbind/testenv/logbuf"
	"github.com/certbind/certbind/testenv/pki"
)

// fixture is a configuration directory: a root CA, two client certificates and a
// certbind.yaml registering billing.
type fixture struct {
	dir                    string
	root, billing, reports *pki.Cert
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{dir: t.TempDir()}
	f.root = pki.NewRoot("Root")
	f.billing = f.root.Leaf("billing", pki.Subject("CN=billing,O=Example"))
	f.reports = f.root.Leaf("reports", pki.Subject("CN=reports,O=Example"))
	f.write(t, "ca.pem", f.root.PEM())
	f.write(t, "certbind.yaml", []byte(`trust_anchors: [ca.pem]
clients:
  - {client_id: billing, token_endpoint_auth_method: tls_client_auth, tls_client_auth_subject_dn: "CN=billing,O=Example"}
routes:
  - {path_prefix: /oauth2/token, mode: client_auth}
`))
	return f
}

func (f *fixture) write(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) path(name string) string { return filepath.Join(f.dir, name) }

// config is a Config serving gRPC on a free port of 127.0.0.1, with the given file.
func (f *fixture) config(file string) server.Config {
	return server.Config{ConfigPath: f.path(file), GRPC: server.Endpoint{Addr: "127.0.0.1:0"}, DrainTimeout: 5 * time.Second}
}

// running is a Server run by a test until its cleanup.
type running struct {
	addrs  server.Addrs
	cancel context.CancelFunc
	done   chan error
	logs   *logbuf.Buffer
}

// start builds a Server from c (logging into the returned buffer unless c has a logger) and
// runs it until the test ends.
func start(t *testing.T, c server.Config) *running {
	t.Helper()
	r := &running{done: make(chan error, 1), logs: &logbuf.Buffer{}}
	if c.Logger == nil {
		l := logrus.New()
		l.Out = r.logs
		c.Logger = l
	}
	s, err := server.New(c)
	if err != nil {
		t.Fatal(err)
	}
	r.addrs = s.Addrs()
	var ctx context.Context
	ctx, r.cancel = context.WithCancel(context.Background())
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends Run and waits for it; later calls return at once.
func (r *running) stop(t *testing.T) {
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		r.done <- nil
	case <-time.After(15 * time.Second):
		t.Error("Run did not return")
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
