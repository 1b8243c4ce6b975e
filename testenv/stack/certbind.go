package stack

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/certbind/certbind/extauthz/listener"
	"github.com/certbind/certbind/server"
	"github.com/certbind/certbind/testenv/testbed"
	"github.com/certbind/certbind/tracing"
)

// certbind is the stack's certbind: package server, as certbind serve runs it, restartable on
// the same addresses.
type certbind struct {
	mu                sync.Mutex
	config            server.Config // without listeners
	grpc, http, admin string        // 127.0.0.1:0 until the first start, then the bound addresses
	cancel            context.CancelFunc
	done              chan error
}

func startCertbind(s *Stack, configPath string, log logrus.FieldLogger, tr *tracing.Tracing) (*certbind, error) {
	c := &certbind{grpc: "127.0.0.1:0", http: "127.0.0.1:0", admin: "127.0.0.1:0", config: server.Config{
		ConfigPath: configPath,
		// Mutual TLS, and only Envoy's certificate may ask.
		TLS: listener.Config{Cert: s.file(testbed.FileCertbindCert), Key: s.file(testbed.FileCertbindKey),
			ClientCA: s.file(testbed.FileCA), AllowedCallers: testbed.EnvoySPIFFEID},
		HTTPLimits:   server.DefaultHTTPLimits(),
		DrainTimeout: 2 * time.Second,
		Logger:       log,
		Tracing:      tr,
	}}
	if err := c.start(); err != nil {
		return nil, err
	}
	return c, nil
}

// start stops certbind if it runs, then builds and runs a new one.
func (c *certbind) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopLocked()
	cfg := c.config
	var ls []net.Listener
	for _, addr := range []string{c.grpc, c.http, c.admin} {
		l, err := listenAgain(addr)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return err
		}
		ls = append(ls, l)
	}
	cfg.GRPC, cfg.HTTP, cfg.Admin = server.Endpoint{Listener: ls[0]}, server.Endpoint{Listener: ls[1]}, server.Endpoint{Listener: ls[2]}
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	a := srv.Addrs()
	c.grpc, c.http, c.admin = a.GRPC.String(), a.HTTP.String(), a.Admin.String()
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.done = cancel, make(chan error, 1)
	go func() { c.done <- srv.Run(ctx) }()
	return nil
}

// listenAgain listens on addr; the socket of a certbind just stopped may linger for a moment.
func listenAgain(addr string) (net.Listener, error) {
	var l net.Listener
	var err error
	for range 50 {
		if l, err = net.Listen("tcp", addr); err == nil {
			return l, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, err
}

// stop ends certbind until the next start: it drains, as on SIGTERM.
func (c *certbind) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopLocked()
}

func (c *certbind) stopLocked() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	<-c.done
	c.cancel, c.done = nil, nil
}
