package redis

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/certbind/certbind/testenv/logbuf"
)

// Binary is the redis-server binary. Without it a test is skipped, and fails in CI (CI set),
// where .ci/run installs it.
func Binary(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"redis-server", "/usr/bin/redis-server"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("redis-server is not installed: .ci/run must install it (apt-get install redis-server)")
	}
	t.Skip("redis-server not installed (apt-get install redis-server)")
	return ""
}

// Config is how a server is run; the zero Config is a plain server anyone on loopback may use.
type Config struct {
	Password  string // requirepass: clients must AUTH with it (user "default")
	TLS       *TLS   // also listen with TLS, on Server.TLSAddr
	ReplicaOf string // host:port of a primary: the server is its (read-only) replica
}

// TLS is what a server listening with TLS presents and asks, in PEM.
type TLS struct {
	Cert, Key []byte // the server's certificate chain and private key
	// ClientCA, when set, is the CA a client's certificate must chain to; a client without
	// one is refused (tls-auth-clients yes). Nil: no client certificate is asked.
	ClientCA []byte
}

// Server is a running redis-server.
type Server struct {
	Addr    string // host:port, plain TCP
	TLSAddr string // host:port with TLS; empty without Config.TLS

	t    testing.TB
	bin  string
	args []string
	c    Config

	mu     sync.Mutex
	cmd    *exec.Cmd
	out    *logbuf.Buffer
	done   chan struct{}
	paused bool
}

// Start runs a plain redis-server until the test ends and returns its host:port.
func Start(t testing.TB) string {
	t.Helper()
	return Run(t, Config{}).Addr
}

// Run runs redis-server as c says until the test ends; it returns once the server answers
// PING. On a failed test it logs the server's output.
func Run(t testing.TB, c Config) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	s := &Server{t: t, bin: bin, c: c, Addr: freePort(t)}
	_, port, _ := net.SplitHostPort(s.Addr)
	s.args = []string{
		"--port", port, "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "",
	}
	if c.Password != "" {
		s.args = append(s.args, "--requirepass", c.Password)
	}
	if c.TLS != nil {
		s.TLSAddr = freePort(t)
		_, tport, _ := net.SplitHostPort(s.TLSAddr)
		cert, key := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
		write(t, cert, c.TLS.Cert)
		write(t, key, c.TLS.Key)
		s.args = append(s.args, "--tls-port", tport, "--tls-cert-file", cert, "--tls-key-file", key)
		if c.TLS.ClientCA != nil {
			ca := filepath.Join(dir, "client-ca.pem")
			write(t, ca, c.TLS.ClientCA)
			s.args = append(s.args, "--tls-ca-cert-file", ca, "--tls-auth-clients", "yes")
		} else {
			s.args = append(s.args, "--tls-auth-clients", "no")
		}
	}
	if c.ReplicaOf != "" {
		host, rport, err := net.SplitHostPort(c.ReplicaOf)
		if err != nil {
			t.Fatalf("ReplicaOf %q: %v", c.ReplicaOf, err)
		}
		s.args = append(s.args, "--replicaof", host, rport)
		if c.Password != "" {
			s.args = append(s.args, "--masterauth", c.Password)
		}
	}
	s.start()
	t.Cleanup(s.cleanup)
	return s
}

// start runs the process and waits until it answers PING on Addr.
func (s *Server) start() {
	s.t.Helper()
	cmd := exec.Command(s.bin, s.args...)
	out := &logbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.out, s.done, s.paused = cmd, out, done, false
	s.mu.Unlock()
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-done:
			s.t.Fatalf("redis-server exited: %v\n%s", cmd.ProcessState, out)
		default:
		}
		if err = ping(s.Addr, s.c.Password); err == nil {
			return
		}
	}
	s.t.Fatalf("redis-server did not answer PING on %s: %v\n%s", s.Addr, err, out)
}

// Stop kills the server (SIGKILL), as a crash would, and waits until it is gone: clients get
// connection refused from then on. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmd.Process.Kill()
	<-s.done
	s.paused = false
}

// Pause stops the process (SIGSTOP): connections and the listening socket stay open, so a
// client's command is sent and never answered, as with a hung server or a partitioned network.
func (s *Server) Pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatal(err)
	}
	s.paused = true
}

// Resume continues a paused server.
func (s *Server) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		s.t.Fatal(err)
	}
	s.paused = false
}

// Restart stops the server and runs it again on the same ports, empty: with no persistence it
// remembers nothing, as after a failover to a replica that had not received the latest writes.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

func (s *Server) cleanup() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused {
		s.cmd.Process.Signal(syscall.SIGCONT)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	if s.t.Failed() {
		s.t.Logf("redis-server output:\n%s", s.out)
	}
}

// ping sends AUTH (with a password) and PING on one connection and expects +OK and +PONG.
func ping(addr, password string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	var req strings.Builder
	want := []string{"+PONG"}
	if password != "" {
		req.WriteString(command("AUTH", password))
		want = []string{"+OK", "+PONG"}
	}
	req.WriteString(command("PING"))
	if _, err := c.Write([]byte(req.String())); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	for _, w := range want {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if got := strings.TrimRight(line, "\r\n"); got != w {
			return fmt.Errorf("answered %q, want %s", got, w)
		}
	}
	return nil
}

// command is args as a RESP array of bulk strings.
func command(args ...string) string {
	var b strings.Builder
	b.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	return b.String()
}

func write(t testing.TB, path string, data []byte) {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
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
