package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/certbind/certbind/cmd/internal/exit"
	"github.com/certbind/certbind/envoy"
	"github.com/certbind/certbind/policy"
)

// checkFlags are the flags of certbind check.
type checkFlags struct {
	config    string
	certFile  string
	chainFile string
	clientID  string
	token     string
	tokenFile string
	path      string
	mode      string
	dpop      string
	method    string
	url       string
}

func parseCheckFlags(args []string, stderr io.Writer) (checkFlags, error) {
	var f checkFlags
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "", "configuration file (required)")
	fs.StringVar(&f.certFile, "cert", "", "client certificate (PEM); further certificates in the file are its chain")
	fs.StringVar(&f.chainFile, "chain", "", "intermediate certificates (PEM) sent with the client certificate")
	fs.StringVar(&f.clientID, "client-id", "", "client_id the request claims (client_auth)")
	fs.StringVar(&f.token, "token", "", "access token to check in bound_token mode (prefer --token-file: argv is visible to other users)")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the access token")
	fs.StringVar(&f.path, "path", "/", "request path, for route-based options such as required scopes")
	fs.StringVar(&f.dpop, "dpop", "", "DPoP proof: the token is sent with the DPoP scheme and this proof (checked against --method and --url, now; no replay state outside serve)")
	fs.StringVar(&f.method, "method", "POST", "request method")
	fs.StringVar(&f.url, "url", "", "request URL (https://host[:port]/path?query): sets the scheme, host and path a DPoP proof's htu is checked against; overrides --path")
	fs.StringVar(&f.mode, "mode", "", "client_auth, bound_token or identity (default: bound_token with a token, client_auth with --client-id, else identity)")
	if err := parseFlags(fs, args); err != nil {
		return f, err
	}
	if f.config == "" {
		return f, exit.Usage("check: --config is required")
	}
	if f.dpop != "" && f.token == "" && f.tokenFile == "" {
		return f, exit.Usage("check: --dpop goes with --token or --token-file")
	}
	if f.url != "" {
		u, err := url.Parse(f.url)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return f, exit.Usage("check: --url %q is not an absolute http(s) URL", f.url)
		}
	}
	return f, nil
}

// check makes the same decision `serve` would, offline, and explains it.
func check(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseCheckFlags(args, stderr)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(f.config, nil)
	if err != nil {
		return err
	}
	presented, err := readPresented(f.certFile, f.chainFile)
	if err != nil {
		return err
	}
	if err := f.readTokenFile(); err != nil {
		return err
	}
	d := policy.NewEngine(policy.EngineConfig{Config: cfg}).Decide(ctx, f.input(presented))
	printDecision(stdout, d)
	if cl, ok := cfg.Client(d.ClientID); ok && d.Mode != policy.ModeBoundToken {
		fmt.Fprintf(stdout, "  client %s is registered with %s %s\n", cl.ID, cl.Method, cl.Binding())
	}
	if !d.Allow {
		return &exit.Error{Code: 1}
	}
	return nil
}

// readPresented reads the client certificate of --cert, its chain being the further
// certificates of that file and then those of --chain; nil without --cert.
func readPresented(certFile, chainFile string) (*policy.Presented, error) {
	if certFile == "" {
		return nil, nil
	}
	certs, err := readPEMCerts(certFile)
	if err != nil {
		return nil, exit.Usage("check: --cert: %v", err)
	}
	if chainFile != "" {
		more, err := readPEMCerts(chainFile)
		if err != nil {
			return nil, exit.Usage("check: --chain: %v", err)
		}
		certs = append(certs, more...)
	}
	var inter [][]byte
	for _, c := range certs[1:] {
		inter = append(inter, c.Raw)
	}
	presented, err := policy.ParsePresented(certs[0].Raw, inter)
	if err != nil {
		return nil, exit.Usage("check: --cert: %v", err)
	}
	return presented, nil
}

// readTokenFile sets f.token from --token-file, if given.
func (f *checkFlags) readTokenFile() error {
	if f.tokenFile == "" {
		return nil
	}
	if f.token != "" {
		return exit.Usage("check: --token and --token-file are exclusive")
	}
	b, err := os.ReadFile(f.tokenFile)
	if err != nil {
		return exit.Usage("check: --token-file: %v", err)
	}
	f.token = strings.TrimSpace(string(b))
	return nil
}

// modeHint is --mode, else the mode the other flags imply.
func (f *checkFlags) modeHint() string {
	switch {
	case f.mode != "":
		return f.mode
	case f.token != "":
		return string(policy.ModeBoundToken)
	case f.clientID != "":
		return string(policy.ModeClientAuth)
	}
	return string(policy.ModeIdentity)
}

// input is the request the flags describe: a form request (--method, POST by default) to --url
// or --path carrying the token as a bearer credential (or with the DPoP scheme and its proof)
// and the client_id in the body, each when given.
func (f *checkFlags) input(presented *policy.Presented) policy.Input {
	in := policy.Input{ModeHint: f.modeHint(), Certificate: presented, Request: policy.Request{
		Method: f.method, Scheme: "https", Path: f.path, Headers: map[string]string{"content-type": "application/x-www-form-urlencoded"},
	}}
	if u, err := url.Parse(f.url); f.url != "" && err == nil {
		in.Request.Scheme, in.Request.Host, in.Request.Path = u.Scheme, u.Host, u.RequestURI()
	}
	switch {
	case f.token != "" && f.dpop != "":
		in.Request.Headers["authorization"] = "DPoP " + f.token
		in.Request.Headers["dpop"] = f.dpop
	case f.token != "":
		in.Request.Headers["authorization"] = "Bearer " + f.token
	}
	if f.clientID != "" {
		in.Request.Body = []byte("client_id=" + url.QueryEscape(f.clientID))
	}
	return in
}

func printDecision(w io.Writer, d policy.Decision) {
	verdict := "DENY"
	if d.Allow {
		verdict = "ALLOW"
	}
	fmt.Fprintf(w, "%s  reason=%s  mode=%s", verdict, d.Reason, d.Mode)
	if d.ClientID != "" {
		fmt.Fprintf(w, "  client_id=%s", d.ClientID)
	}
	fmt.Fprintln(w)
	if d.Certificate != nil {
		fmt.Fprintf(w, "  certificate: subject %s, x5t#S256 %s\n", d.Certificate.Subject, d.Certificate.Thumbprint)
	}
	if d.Mode == policy.ModeBoundToken && (d.Subject != "" || len(d.Scopes) > 0) {
		fmt.Fprintf(w, "  token: sub %q, scope %q\n", d.Subject, strings.Join(d.Scopes, " "))
	}
	if d.DPoPKey != "" {
		fmt.Fprintf(w, "  dpop: key jkt %s\n", d.DPoPKey)
	}
	if len(d.RequiredScopes) > 0 {
		fmt.Fprintf(w, "  route requires scope %q\n", strings.Join(d.RequiredScopes, " "))
	}
	if !d.Allow {
		fmt.Fprintf(w, "  why: %s\n", d.Reason.Description())
		if d.Cause != nil {
			fmt.Fprintf(w, "  detail: %v\n", d.Cause)
		}
	}
}

func readPEMCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue // a key next to the certificate is common in such files; it is never read
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return certs, nil
}

// thumbprint prints a certificate's x5t#S256 and its hex SHA-256 (Envoy's XFCC Hash).
func thumbprint(args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		return exit.Usage("usage: certbind thumbprint PEM")
	}
	certs, err := readPEMCerts(args[0])
	if err != nil {
		return exit.Usage("thumbprint: %s: %v", args[0], err)
	}
	t := policy.ThumbprintOf(certs[0].Raw)
	fmt.Fprintf(stdout, "x5t#S256  %s\nsha256    %s\n", t, t.Hex())
	return nil
}

// validate checks a certbind configuration and/or an Envoy bootstrap: exit 0 when valid, 2
// with every problem named by key path. The Envoy file is parsed with Envoy's own protos and
// linted for what certbind needs; with --config too, the lint knows certbind's XFCC policy.
func validate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "certbind configuration file")
	envoyFile := fs.String("envoy", "", "Envoy bootstrap (YAML) to validate and lint for certbind")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *config == "" && *envoyFile == "" {
		return exit.Usage("validate: give --config, --envoy, or both")
	}
	elements, peer, dpop := "single", "", false
	if *config != "" {
		// Loading a registry of 100,000 clients allocates about ten times what stays live; at
		// GOGC=100 the collector runs so often that both CPUs fight over it (1.9-2.1 s, half of
		// it system time); at 200, like serve, the heap peaks higher (190-218 MB). At 150 with
		// a soft limit of 140 MiB, well above the load's live heap (about 90 MB) so that it
		// only trims the peak: about 1.2 s of CPU and 153 MB here.
		tuneRuntime(serveFlags{gcPercent: validateGCPercent, memoryLimit: validateMemoryLimitMB})
		cfg, err := loadConfig(*config, nil)
		if err != nil {
			return err
		}
		elements, peer, dpop = string(cfg.XFCC.Elements), string(cfg.Sources.Peer), cfg.AcceptsDPoP()
		for _, w := range cfg.Warnings() {
			fmt.Fprintf(stdout, "%s: warning: %s\n", *config, w)
		}
		fmt.Fprintf(stdout, "%s: valid (%d clients, %d trust anchors)\n", *config, len(cfg.Clients()), len(cfg.TrustAnchors()))
	}
	if *envoyFile == "" {
		return nil
	}
	b, err := envoy.LoadFile(*envoyFile)
	if err != nil {
		return &exit.Error{Code: 2, Err: fmt.Errorf("%s: %w", *envoyFile, err)}
	}
	findings := envoy.Lint(b, envoy.LintOptions{XFCCElements: elements, PeerSource: peer, DPoP: dpop})
	errs := 0
	for _, f := range findings {
		fmt.Fprintf(stdout, "%s: %s\n", *envoyFile, f)
		if f.Severity == envoy.SeverityError {
			errs++
		}
	}
	if errs > 0 {
		return &exit.Error{Code: 2, Err: fmt.Errorf("%s: %d errors", *envoyFile, errs)}
	}
	fmt.Fprintf(stdout, "%s: valid Envoy bootstrap; %d warnings\n", *envoyFile, len(findings))
	return nil
}
