package reload_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certbind/certbind/policy"
	"github.com/certbind/certbind/policy/reload"
	"github.com/certbind/certbind/testenv/pki"
)

const one = `trust_anchors: [ca.pem]
clients:
  - {client_id: billing, token_endpoint_auth_method: tls_client_auth, tls_client_auth_san_dns: billing.example}
`

const two = one + `  - {client_id: reports, token_endpoint_auth_method: tls_client_auth, tls_client_auth_san_dns: reports.example}
`

type rig struct {
	dir    string
	engine *policy.Engine
	r      *reload.Reloader
	mu     sync.Mutex
	loads  []error
	cancel context.CancelFunc
	done   chan struct{}
	hup    chan struct{}
}

func newRig(t *testing.T, poll time.Duration) *rig {
	t.Helper()
	g := &rig{dir: t.TempDir(), engine: policy.NewEngine(policy.EngineConfig{}), hup: make(chan struct{}, 1), done: make(chan struct{})}
	root := pki.NewRoot("Root")
	g.write(t, "ca.pem", string(root.PEM()))
	g.write(t, "certbind.yaml", one)
	g.r = reload.New(reload.Config{Path: filepath.Join(g.dir, "certbind.yaml"), Engine: g.engine, Debounce: 20 * time.Millisecond, Poll: poll,
		OnLoad: func(_ *policy.Config, err error) { g.mu.Lock(); g.loads = append(g.loads, err); g.mu.Unlock() }})
	if err := g.r.Load(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go func() { defer close(g.done); g.r.Run(ctx, g.hup) }()
	t.Cleanup(func() { cancel(); <-g.done })
	// The run loop answers a trigger only once its watches are set: one reload through it
	// proves a file change from now on is seen (a sleep here was a guess, flaky under load).
	n, _ := g.lastLoad()
	g.hup <- struct{}{}
	eventually(t, "the run loop", func() bool { c, _ := g.lastLoad(); return c > n })
	return g
}

func (g *rig) write(t *testing.T, name, data string) {
	t.Helper()
	// Write then rename, as editors and Kubernetes do: readers never see half a file.
	tmp := filepath.Join(g.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(g.dir, name)); err != nil {
		t.Fatal(err)
	}
}

func (g *rig) clients() int { return len(g.engine.Config().Clients()) }

func (g *rig) lastLoad() (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.loads) == 0 {
		return 0, nil
	}
	return len(g.loads), g.loads[len(g.loads)-1]
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestReloadOnChange(t *testing.T) {
	g := newRig(t, -1)
	old := g.engine.Config()
	g.write(t, "certbind.yaml", two)
	eventually(t, "the new client", func() bool { return g.clients() == 2 })
	if g.engine.Config() == old {
		t.Fatal("configuration not swapped")
	}
}

func TestReloadKeepsOldOnError(t *testing.T) {
	g := newRig(t, -1)
	n, _ := g.lastLoad()
	g.write(t, "certbind.yaml", one+"  - {client_id: billing, token_endpoint_auth_method: tls_client_auth, tls_client_auth_san_dns: x}\n")
	eventually(t, "a failed load", func() bool { c, err := g.lastLoad(); return c > n && err != nil })
	if _, err := g.lastLoad(); !strings.Contains(err.Error(), `clients[1].client_id: duplicate client_id "billing"`) {
		t.Errorf("error does not name the key path: %v", err)
	}
	if g.clients() != 1 {
		t.Fatalf("%d clients after a broken file, want the old 1", g.clients())
	}
	g.write(t, "certbind.yaml", "{{{ not yaml")
	eventually(t, "another failed load", func() bool { c, err := g.lastLoad(); return c > n+1 && err != nil })
	if g.clients() != 1 {
		t.Fatal("garbage replaced the configuration")
	}
	// Repaired: picked up again.
	g.write(t, "certbind.yaml", two)
	eventually(t, "the repaired file", func() bool { return g.clients() == 2 })
}

func TestReloadReferencedFile(t *testing.T) {
	g := newRig(t, -1)
	n, _ := g.lastLoad()
	// The trust anchor is deleted: the configuration cannot load, the old one stays.
	if err := os.Remove(filepath.Join(g.dir, "ca.pem")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a failed load", func() bool { c, err := g.lastLoad(); return c > n && err != nil })
	if g.engine.Config() == nil || g.clients() != 1 {
		t.Fatal("deleting a trust anchor dropped the configuration")
	}
	// A new anchor appears: loaded.
	g.write(t, "ca.pem", string(pki.NewRoot("Root 2").PEM()))
	eventually(t, "a good load", func() bool { _, err := g.lastLoad(); return err == nil })
	if anchors := g.engine.Config().TrustAnchors(); len(anchors) != 1 || anchors[0].Subject.CommonName != "Root 2" {
		t.Fatalf("anchors %v", anchors)
	}
}

func TestReloadOnSignalAndPoll(t *testing.T) {
	g := newRig(t, 50*time.Millisecond)
	n, _ := g.lastLoad()
	g.hup <- struct{}{}
	eventually(t, "the SIGHUP reload", func() bool { c, _ := g.lastLoad(); return c > n })
	// Unchanged files: polling loads nothing.
	c1, _ := g.lastLoad()
	time.Sleep(200 * time.Millisecond)
	if c2, _ := g.lastLoad(); c2 != c1 {
		t.Errorf("%d loads without a change", c2-c1)
	}
}

func TestInFlightKeepsItsConfig(t *testing.T) {
	g := newRig(t, -1)
	cfg := g.engine.Config()
	g.write(t, "certbind.yaml", two)
	eventually(t, "the new client", func() bool { return g.clients() == 2 })
	// A check that started before the swap decides with the configuration it read.
	d := g.engine.DecideWith(context.Background(), cfg, policy.Input{ModeHint: "client_auth", Request: policy.Request{Path: "/?client_id=reports"}})
	if d.Reason != policy.ReasonUnknownClient {
		t.Fatalf("%s, want unknown_client under the old configuration", d.Reason)
	}
}
