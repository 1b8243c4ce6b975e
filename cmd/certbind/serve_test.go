package main

import (
	"context"
	"io"
	"os"
	"reflect"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/certbind/certbind/extauthz/listener"
	"github.com/certbind/certbind/server"
)

// The assembly itself (listeners, health, reload, drain, TLS, HTTP limits) is tested in
// package server; these tests cover what serve adds: flags, runtime tuning, SIGHUP.

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
}

// TestServeConfigFromFlags: every flag reaches package server; the defaults are the server's.
func TestServeConfigFromFlags(t *testing.T) {
	log, _ := logtest.NewNullLogger()
	reload := make(chan struct{})
	f, err := parseServeFlags([]string{"--config", "c.yaml"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := server.Config{ConfigPath: "c.yaml", Reload: reload, GRPC: server.Endpoint{Addr: ":9191"},
		HTTPLimits: server.DefaultHTTPLimits(), DrainTimeout: server.DefaultDrainTimeout, Logger: log}
	if got := serverConfig(f, log, reload); !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
	f, err = parseServeFlags([]string{"--config", "c.yaml", "--grpc-addr", "unix:/run/c.sock", "--http-addr", ":8080", "--admin-addr", "127.0.0.1:9901",
		"--tls-cert", "s.pem", "--tls-key", "k.pem", "--tls-client-ca", "ca.pem", "--allowed-callers", "spiffe://x/envoy",
		"--wait-for-config", "--pprof", "--drain-timeout", "3s", "--http-read-timeout", "1s", "--http-write-timeout", "2s",
		"--http-idle-timeout", "4s", "--http-max-conns", "7"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want = server.Config{ConfigPath: "c.yaml", WaitForConfig: true, Reload: reload,
		GRPC: server.Endpoint{Addr: "unix:/run/c.sock"}, HTTP: server.Endpoint{Addr: ":8080"}, Admin: server.Endpoint{Addr: "127.0.0.1:9901"},
		TLS:          listener.Config{Cert: "s.pem", Key: "k.pem", ClientCA: "ca.pem", AllowedCallers: "spiffe://x/envoy"},
		HTTPLimits:   server.HTTPLimits{ReadTimeout: time.Second, WriteTimeout: 2 * time.Second, IdleTimeout: 4 * time.Second, MaxConns: 7},
		DrainTimeout: 3 * time.Second, Pprof: true, Logger: log}
	if got := serverConfig(f, log, reload); !reflect.DeepEqual(got, want) {
		t.Errorf("every flag:\n got %+v\nwant %+v", got, want)
	}
}

// TestReloadOnSIGHUP: SIGHUP becomes a reload request, and is logged.
func TestReloadOnSIGHUP(t *testing.T) {
	log, hook := logtest.NewNullLogger()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reload := reloadOnSIGHUP(ctx, log)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reload:
	case <-time.After(5 * time.Second):
		t.Fatal("no reload request after SIGHUP")
	}
	if e := hook.LastEntry(); e == nil || e.Level != logrus.InfoLevel || e.Message != "SIGHUP: reloading the configuration" {
		t.Errorf("log: %v", e)
	}
}
