package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// nodeDir holds the Node.js side: package.json and its lockfile, as.mjs and client.mjs.
const nodeDir = "node"

// node is the Node.js binary, found by TestMain.
var node string

// TestMain runs the suite only under `make interop` (CERTBIND_INTEROP set), with Node.js and
// the locked packages installed. Otherwise it says why in one line and runs nothing; in CI
// (CI set) a missing piece under make interop fails instead.
func TestMain(m *testing.M) {
	why := ""
	switch path, err := exec.LookPath("node"); {
	case os.Getenv("CERTBIND_INTEROP") == "":
		why = "run by `make interop`"
	case err != nil:
		why = "Node.js is not installed (the suite needs node and npm)"
	default:
		node = path
		if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "oidc-provider")); err != nil {
			why = "the npm packages are not installed (make interop runs npm ci in testenv/interop/node)"
		}
	}
	if why == "" {
		os.Exit(m.Run())
	}
	if os.Getenv("CI") != "" && os.Getenv("CERTBIND_INTEROP") != "" {
		fmt.Println("FAIL: interop suite cannot run in CI: " + why)
		os.Exit(1)
	}
	fmt.Println("interop suite skipped: " + why)
	os.Exit(0)
}

// authServer is oidc-provider, run by as.mjs: one process, one Provider per name, each with an
// HTTPS listener (its issuer) and a plain HTTP one for the proxies.
type authServer struct {
	Providers map[string]struct {
		Issuer string `json:"issuer"`
		HTTP   string `json:"http"`
	} `json:"providers"`

	mu     sync.Mutex                   // one command at a time
	keys   map[string][]json.RawMessage // each provider's current keys
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	stderr *strings.Builder // read only once the process has exited
}

// asConfig is as.mjs's configuration file.
type asConfig struct {
	TLSCert   string                     `json:"tls_cert"`
	TLSKey    string                     `json:"tls_key"`
	ClientCA  string                     `json:"client_ca"` // verifies certificates on the HTTPS listeners
	Providers []asProvider               `json:"providers"`
	Clients   []map[string]any           `json:"clients"`
	Resources map[string]asResourceServe `json:"resources"`
}

type asProvider struct {
	Name string            `json:"name"`
	Keys []json.RawMessage `json:"keys"` // private JWKs; the first signs
}

type asResourceServe struct {
	Format string `json:"format"` // jwt | opaque
	Scope  string `json:"scope"`
}

func startAS(t *testing.T, dir string, cfg asConfig) *authServer {
	t.Helper()
	path := filepath.Join(dir, "as.json")
	data, _ := json.Marshal(cfg)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "as.mjs", path)
	cmd.Dir = nodeDir
	as := &authServer{stderr: &strings.Builder{}, keys: map[string][]json.RawMessage{}}
	for _, p := range cfg.Providers {
		as.keys[p.Name] = p.Keys
	}
	cmd.Stderr = as.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if as.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		as.stdin.Close() // as.mjs exits on EOF
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
		// Logged after Wait: only then has the process stopped writing.
		if t.Failed() {
			t.Logf("as.mjs stderr:\n%s", as.stderr)
		}
	})
	as.lines = bufio.NewScanner(stdout)
	as.lines.Buffer(nil, 1<<20)
	if err := as.read(30*time.Second, as); err != nil {
		t.Fatalf("as.mjs did not start: %v (its stderr follows)", err)
	}
	return as
}

// read decodes as.mjs's next stdout line into v.
func (as *authServer) read(timeout time.Duration, v any) error {
	line := make(chan error, 1)
	go func() {
		if !as.lines.Scan() {
			line <- fmt.Errorf("as.mjs closed its output: %v", as.lines.Err())
			return
		}
		line <- json.Unmarshal(as.lines.Bytes(), v)
	}()
	select {
	case err := <-line:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("no answer from as.mjs in %s", timeout)
	}
}

// setKeys replaces the signing keys of the named provider; the first signs.
func (as *authServer) setKeys(t *testing.T, provider string, keys ...json.RawMessage) {
	t.Helper()
	as.mu.Lock()
	defer as.mu.Unlock()
	cmd, _ := json.Marshal(map[string]any{"cmd": "keys", "provider": provider, "keys": keys})
	if _, err := as.stdin.Write(append(cmd, '\n')); err != nil {
		t.Fatal(err)
	}
	var ans struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := as.read(30*time.Second, &ans); err != nil || !ans.OK {
		t.Fatalf("keys for %s: %v %s", provider, err, ans.Error)
	}
	as.keys[provider] = keys
}

// currentKey is the key the named provider signs with.
func (as *authServer) currentKey(provider string) json.RawMessage {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.keys[provider][0]
}

// oauthClient runs client.mjs (openid-client) with one client's certificate, or none.
type oauthClient struct {
	node, ca string
	cert     string // the chain file the client presents; "" presents none
	key      string
}

// tokenResult is client.mjs token's answer.
type tokenResult struct {
	OK          bool   `json:"ok"`
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"` // lower case: "bearer", "dpop"
	Status      int    `json:"status"`
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Reason      string `json:"reason"`
}

// callResult is client.mjs call's answer.
type callResult struct {
	OK              bool   `json:"ok"`
	Status          int    `json:"status"`
	WWWAuthenticate string `json:"www_authenticate"`
	Reason          string `json:"reason"`
	Body            string `json:"body"`
	Error           string `json:"error"`
	Proof           string `json:"dpop"` // the DPoP proof sent, if any
}

func (c oauthClient) run(t *testing.T, v any, args ...string) {
	t.Helper()
	c.runWith(t, nil, v, args...)
}

// runWith runs client.mjs with stdin (nil: none) and decodes its answer into v.
func (c oauthClient) runWith(t *testing.T, stdin []byte, v any, args ...string) {
	t.Helper()
	args = append([]string{"client.mjs"}, append(args, "--ca", c.ca)...)
	if c.cert != "" {
		args = append(args, "--cert", c.cert, "--key", c.key)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.node, args...)
	cmd.Dir = nodeDir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client.mjs %s: %v\n%s", args[1], err, stderr.String())
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), v); err != nil {
		t.Fatalf("client.mjs %s: %v in %q\n%s", args[1], err, out, stderr.String())
	}
}

// token runs a client_credentials grant at endpoint (TlsClientAuth: client_id in the body).
func (c oauthClient) token(t *testing.T, issuer, endpoint, clientID, auth, resource string) tokenResult {
	t.Helper()
	var r tokenResult
	c.run(t, &r, "token", "--issuer", issuer, "--token-endpoint", endpoint, "--client-id", clientID,
		"--auth", auth, "--resource", resource, "--scope", "read")
	return r
}

// call calls a protected resource with the access token.
func (c oauthClient) call(t *testing.T, url, accessToken string) callResult {
	t.Helper()
	var r callResult
	// --token=VALUE: an opaque token may begin with "-", which parseArgs would take for an option.
	c.run(t, &r, "call", "--url", url, "--token="+accessToken)
	if !r.OK {
		t.Fatalf("client.mjs call %s: %s", url, r.Error)
	}
	return r
}
