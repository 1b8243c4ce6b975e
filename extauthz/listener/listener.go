// Package listener builds the TLS configuration of certbind's authorization listeners: mutual
// TLS against a client CA, an allow-list of caller identities (Envoy's URI or DNS SAN) checked
// during the handshake, and certificate, key and CA files re-read when they change. Limit bounds
// how many connections a listener holds open at once.
package listener

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// Config names the listener's TLS material. Cert and Key are required; ClientCA turns on
// client certificates (required and verified); AllowedCallers (with ClientCA) admits only
// those callers.
type Config struct {
	Cert, Key, ClientCA string
	AllowedCallers      string             // comma-separated URI or DNS SANs
	Recheck             time.Duration      // least time between two checks of the files; default DefaultRecheck
	Log                 logrus.FieldLogger // reloads and failed reloads; may be nil
}

// DefaultRecheck is how often, at most, the files are checked for changes.
const DefaultRecheck = 10 * time.Second

// ServerTLS builds the listeners' TLS configuration. The certificate, key and client CA files
// are re-read when they change (checked at most every Recheck, on a handshake), so rotating
// them needs no restart; a broken new file keeps the old material and is logged.
func ServerTLS(c Config) (*tls.Config, error) {
	if c.Recheck == 0 {
		c.Recheck = DefaultRecheck
	}
	rt := &reloadingTLS{f: c, log: c.Log}
	// The stamp first: a file rewritten during build then differs from it, and is reloaded.
	rt.stamp = rt.fileStamp()
	cur, err := rt.build()
	if err != nil {
		return nil, err
	}
	rt.cur.Store(cur)
	rt.checked = time.Now()
	// The returned config only dispatches: every handshake gets the current one.
	return &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: rt.forClient,
		// ALPN and certificates for callers (grpc-go, net/http) that inspect the outer config.
		Certificates: cur.Certificates, NextProtos: []string{"h2", "http/1.1"}}, nil
}

type reloadingTLS struct {
	f       Config
	log     logrus.FieldLogger
	cur     atomic.Pointer[tls.Config]
	mu      sync.Mutex
	checked time.Time
	stamp   [32]byte
}

func (rt *reloadingTLS) forClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	rt.mu.Lock()
	if time.Since(rt.checked) >= rt.f.Recheck {
		rt.checked = time.Now()
		if st := rt.fileStamp(); st != rt.stamp {
			if next, err := rt.build(); err != nil {
				if rt.log != nil {
					rt.log.WithError(err).Error("TLS files changed but do not load; keeping the previous certificate")
				}
			} else {
				rt.cur.Store(next)
				rt.stamp = st
				if rt.log != nil {
					rt.log.Info("TLS certificate reloaded")
				}
			}
		}
	}
	rt.mu.Unlock()
	return rt.cur.Load(), nil
}

// fileStamp is a digest of the files' contents: a rewrite of the same size within one
// modification-time tick still changes it. The files are small and read at most every
// tlsRecheck.
func (rt *reloadingTLS) fileStamp() [32]byte {
	h := sha256.New()
	for _, p := range []string{rt.f.Cert, rt.f.Key, rt.f.ClientCA} {
		if p == "" {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			data = []byte("unreadable: " + err.Error())
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(data))
		h.Write(data)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func (rt *reloadingTLS) build() (*tls.Config, error) {
	f := rt.f
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if f.ClientCA == "" {
		return tc, nil
	}
	pem, err := os.ReadFile(f.ClientCA)
	if err != nil {
		return nil, fmt.Errorf("--tls-client-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-client-ca: %s holds no PEM certificate", f.ClientCA)
	}
	tc.ClientCAs = pool
	tc.ClientAuth = tls.RequireAndVerifyClientCert
	if f.AllowedCallers != "" {
		tc.VerifyConnection = ParseCallers(f.AllowedCallers).Verify
	}
	return tc, nil
}

// Callers is the --allowed-callers list: URI SANs, compared exactly (a SPIFFE ID's path is
// case-sensitive), and DNS SANs, compared without regard to case. An entry with "://" is a URI.
type Callers struct{ uris, dns map[string]bool }

// ParseCallers parses a comma-separated list of URI and DNS SANs.
func ParseCallers(list string) Callers {
	c := Callers{uris: map[string]bool{}, dns: map[string]bool{}}
	for _, id := range strings.Split(list, ",") {
		switch id = strings.TrimSpace(id); {
		case id == "":
		case strings.Contains(id, "://"):
			c.uris[id] = true
		default:
			c.dns[strings.ToLower(id)] = true
		}
	}
	return c
}

// Verify admits a TLS peer whose verified leaf carries an allowed URI or DNS SAN: a caller that
// is not Envoy is refused during the handshake, before any decision. It is a
// tls.Config.VerifyConnection.
func (c Callers) Verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("certbind: caller presented no certificate")
	}
	leaf := cs.PeerCertificates[0]
	for _, u := range leaf.URIs {
		if c.uris[u.String()] {
			return nil
		}
	}
	for _, d := range leaf.DNSNames {
		if c.dns[strings.ToLower(d)] {
			return nil
		}
	}
	return fmt.Errorf("certbind: caller %q is not in --allowed-callers", leaf.Subject)
}
