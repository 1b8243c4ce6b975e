package server

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/certbind/certbind/extauthz/listener"
	"github.com/certbind/certbind/tracing"
)

// Config is what a Server is built from. The zero value of every optional field is off or
// none; the defaults certbind serve starts with are DefaultHTTPLimits and DefaultDrainTimeout.
type Config struct {
	// ConfigPath is certbind's configuration file. It is loaded by New and reloaded whenever it
	// or a file it names changes (package policy/reload).
	ConfigPath string
	// WaitForConfig starts the Server even when the configuration does not load: it is not
	// ready (health NOT_SERVING, /readyz 503, every Check a gRPC error) until a valid one is
	// written. Without it New fails.
	WaitForConfig bool
	// Reload asks for a reload of the configuration, on top of the file watch (certbind serve
	// sends one on SIGHUP). Optional; it must not be closed.
	Reload <-chan struct{}

	GRPC  Endpoint // Envoy's ext_authz (envoy.service.auth.v3) and gRPC health; required
	HTTP  Endpoint // the HTTP authorization endpoint (Envoy http_service, nginx auth_request); optional
	Admin Endpoint // /healthz, /readyz, /metrics and, with Pprof, /debug/pprof/; plain HTTP; optional

	// TLS, when TLS.Cert is set, serves GRPC and HTTP over TLS (package extauthz/listener):
	// with ClientCA callers must present a certificate from it, with AllowedCallers as well
	// only those callers are admitted. TLS.Log defaults to Logger.
	TLS listener.Config
	// HTTPLimits bound the HTTP endpoint's connections.
	HTTPLimits HTTPLimits
	// DrainTimeout is how long, once Run's context ends, in-flight checks may take to finish
	// before their connections are closed. Zero closes them at once.
	DrainTimeout time.Duration
	// Pprof serves Go profiling on the admin listener. It exposes internals: keep the admin
	// listener private.
	Pprof bool
	// Logger receives one line per decision and the Server's own events (loads, reloads,
	// shutdown). Nil discards them all.
	Logger logrus.FieldLogger
	// Tracing, when enabled (tracing.Setup from the OTEL_* environment), makes a span per
	// check and per fetch, and puts trace_id and span_id in the decision log. Run flushes and
	// shuts it down when it returns, within DrainTimeout (at least a second): give each Server
	// its own. Nil is off.
	Tracing *tracing.Tracing
}

// Endpoint is where a listener serves: an already-open Listener, or an address to listen on.
// Neither set means the listener is off.
type Endpoint struct {
	// Addr is host:port (port 0 picks a free one: see Server.Addrs) or unix:/path/to.sock
	// (a stale socket file is replaced; the new one is made 0660).
	Addr string
	// Listener is used instead of Addr when set: a test's, or one handed over by a
	// supervisor. The Server closes it (New too, when it fails).
	Listener net.Listener
}

func (e Endpoint) enabled() bool { return e.Listener != nil || e.Addr != "" }

// HTTPLimits bound the HTTP endpoint's connections, so callers that stall cannot hold them
// open. A zero field is no limit (IdleTimeout: ReadTimeout applies).
type HTTPLimits struct {
	ReadTimeout  time.Duration // the longest a whole request (headers and body) may take to arrive
	WriteTimeout time.Duration // from the end of the headers until the answer is written, decision included
	IdleTimeout  time.Duration // how long a kept-alive connection may wait for its next request
	MaxConns     int           // the most connections open at once; more wait in the listen backlog
}

// DefaultHTTPLimits are the limits certbind serve starts with.
func DefaultHTTPLimits() HTTPLimits {
	return HTTPLimits{ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second, MaxConns: 1024}
}

// DefaultDrainTimeout is the drain timeout certbind serve starts with.
const DefaultDrainTimeout = 10 * time.Second

// ErrInvalid marks what New refuses in what it was given: the configuration file, the TLS
// files, or a Config field. certbind serve exits with status 2 on it.
var ErrInvalid = errors.New("server: invalid configuration")

// invalid wraps err so that errors.Is(err, ErrInvalid) holds; the message stays err's.
type invalid struct{ err error }

func (e invalid) Error() string   { return e.err.Error() }
func (e invalid) Unwrap() []error { return []error{e.err, ErrInvalid} }

func invalidf(format string, args ...any) error { return invalid{fmt.Errorf(format, args...)} }

// validate checks the fields that do not need a file read.
func (c Config) validate() error {
	switch {
	case c.ConfigPath == "":
		return invalidf("server: ConfigPath is required")
	case !c.GRPC.enabled():
		return invalidf("server: GRPC needs an Addr or a Listener")
	case (c.TLS.Cert == "") != (c.TLS.Key == ""):
		return invalidf("server: TLS.Cert and TLS.Key go together")
	case c.TLS.ClientCA != "" && c.TLS.Cert == "":
		return invalidf("server: TLS.ClientCA needs TLS.Cert and TLS.Key")
	case c.TLS.AllowedCallers != "" && c.TLS.ClientCA == "":
		return invalidf("server: TLS.AllowedCallers needs TLS.ClientCA: callers are identified by their certificate")
	case c.HTTPLimits.ReadTimeout < 0 || c.HTTPLimits.WriteTimeout < 0 || c.HTTPLimits.IdleTimeout < 0 || c.HTTPLimits.MaxConns < 0:
		return invalidf("server: HTTPLimits cannot be negative")
	case c.DrainTimeout < 0:
		return invalidf("server: DrainTimeout cannot be negative")
	}
	return nil
}
