package redis

import (
	"strings"
	"testing"
)

// TestServer: the server answers once Run returns; a password is asked; Stop refuses
// connections, Pause leaves them unanswered, Resume and Restart bring it back.
func TestServer(t *testing.T) {
	s := Run(t, Config{Password: "pw"})
	if err := ping(s.Addr, "pw"); err != nil {
		t.Fatal(err)
	}
	if err := ping(s.Addr, ""); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("PING without the password: %v, want NOAUTH", err)
	}
	s.Pause()
	if err := ping(s.Addr, "pw"); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("paused: %v, want a timeout", err)
	}
	s.Resume()
	if err := ping(s.Addr, "pw"); err != nil {
		t.Errorf("resumed: %v", err)
	}
	s.Stop()
	if err := ping(s.Addr, "pw"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("stopped: %v, want connection refused", err)
	}
	s.Stop()
	s.Restart()
	if err := ping(s.Addr, "pw"); err != nil {
		t.Errorf("restarted: %v", err)
	}
	if addr := Start(t); ping(addr, "") != nil {
		t.Errorf("Start: %s does not answer", addr)
	}
}
