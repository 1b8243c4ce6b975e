package nginx

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/certbind/certbind/extauthz"
	"github.com/certbind/certbind/policy"
)

// HTTPAuthzConfig is what deploy/nginx/certbind.conf asks of certbind.yaml: append it to a
// configuration that has no http_authz section.
const HTTPAuthzConfig = `intermediates: [pki/intermediate.pem]
http_authz:
  certificate_format: pem_urlencoded
  certificate_header: x-ssl-client-cert
  mode_header: x-certbind-mode
  original_uri_header: x-original-uri
  original_method_header: x-original-method
  original_scheme_header: x-original-scheme
  original_authority_header: x-original-authority
  auth_request_statuses: true
`

// jsModule is where Debian's libnginx-mod-http-js installs njs.
const jsModule = "/usr/lib/nginx/modules/ngx_http_js_module.so"

// Binary is the nginx binary. Without nginx or its njs module a test is skipped, and fails
// in CI (CI set), where .ci/run installs both.
func Binary(t testing.TB) string {
	t.Helper()
	missing := "nginx"
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			if _, err := os.Stat(jsModule); err == nil {
				return path
			}
			missing = "nginx's njs module (" + jsModule + ")"
			break
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed: .ci/run must install it (apt-get install nginx-light libnginx-mod-http-js)", missing)
	}
	t.Skipf("%s not installed (apt-get install nginx-light libnginx-mod-http-js)", missing)
	return ""
}

// ServeCertbind serves certbind's HTTP authorization endpoint for the configuration at
// configPath (which must include HTTPAuthzConfig) on a loopback port, plain HTTP as
// certbind.conf's proxy_pass expects, until the test ends. It returns host:port.
func ServeCertbind(t testing.TB, configPath string) string {
	t.Helper()
	cfg, err := policy.LoadConfig(configPath, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return Serve(t, extauthz.NewHTTPHandler(extauthz.New(extauthz.Config{Engine: policy.NewEngine(policy.EngineConfig{Config: cfg})})))
}

// Serve serves h on a loopback port until the test ends and returns host:port.
func Serve(t testing.TB, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// Config points the shipped configuration at a test's parts.
type Config struct {
	Dir   string // nginx's prefix, configuration and logs
	PKI   string // a testbed PKI: the server certificate and the client CA
	Authz string // certbind's HTTP endpoint, host:port (ServeCertbind)
	AS    string // the authorization server, host:port
	API   string // the protected API, host:port
}

// Server is a running nginx with the shipped deploy/nginx configuration.
type Server struct {
	Base     string // https:// of the server for PKI clients (ssl_verify_client on)
	SelfBase string // https:// of the server for self-signed clients (optional_no_ca)
}

// Start runs nginx with the files of deploy/nginx, changed only in addresses and paths, until
// the test ends. On a failed test it logs nginx's error log.
func Start(t testing.TB, c Config) *Server {
	t.Helper()
	bin := Binary(t)
	listen, listenSelf := freePort(t), freePort(t)
	deploy := filepath.Join(repoRoot(t), "deploy", "nginx")
	rewrite := strings.NewReplacer(
		"server certbind:9192;", "server "+c.Authz+";",
		"server as:8080;", "server "+c.AS+";",
		"server api:8080;", "server "+c.API+";",
		"listen 8443 ssl;", "listen "+listen+" ssl;",
		"listen 8444 ssl;", "listen "+listenSelf+" ssl;",
		"/etc/certbind/pki", c.PKI,
		"/etc/nginx/", c.Dir+"/",
	)
	// Every file, with the substitutions each must have received: a shipped file that changed
	// shape fails here rather than testing something else.
	for file, must := range map[string][]string{
		"certbind.conf":                  {c.Authz, c.AS, c.API, listen, listenSelf, c.PKI, c.Dir + "/certbind-locations.conf", c.Dir + "/certbind.js"},
		"certbind-locations.conf":        {c.Dir + "/certbind-upstream-headers.conf"},
		"certbind-upstream-headers.conf": nil,
		"certbind.js":                    nil,
	} {
		data, err := os.ReadFile(filepath.Join(deploy, file))
		if err != nil {
			t.Fatal(err)
		}
		out := rewrite.Replace(string(data))
		for _, m := range must {
			if !strings.Contains(out, m) {
				t.Fatalf("deploy/nginx/%s changed shape: %q not substituted", file, m)
			}
		}
		if err := os.WriteFile(filepath.Join(c.Dir, file), []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n" // workers must read this test's private temp directory
	}
	main := fmt.Sprintf(`load_module %[3]s;
%[1]sworker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    include %[2]s/certbind.conf;
}
`, user, c.Dir, jsModule)
	if err := os.WriteFile(filepath.Join(c.Dir, "nginx.conf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, bin, c.Dir)
	s := &Server{Base: "https://" + listen, SelfBase: "https://" + listenSelf}
	waitListening(t, c.Dir, listen, listenSelf)
	return s
}

func run(t testing.TB, bin, dir string) {
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
		if t.Failed() {
			logs, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output: %s\nerror.log:\n%s", out, logs)
		}
	})
}

// waitListening waits until nginx accepts connections on each address.
func waitListening(t testing.TB, dir string, addrs ...string) {
	for _, a := range addrs {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			c, err := net.Dial("tcp", a)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				logs, _ := os.ReadFile(filepath.Join(dir, "error.log"))
				t.Fatalf("nginx did not come up on %s: %v\n%s", a, err, logs)
			}
		}
	}
}

func freePort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// repoRoot is the repository's root: this file is testenv/nginx/nginx.go.
func repoRoot(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}
