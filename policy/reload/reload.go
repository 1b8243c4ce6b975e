// Package reload keeps an Engine's configuration current: it reloads the configuration file and
// every file the configuration names (trust anchors, CRLs, JWKS files, secrets) when any of them
// changes, and on demand (SIGHUP). A new configuration is loaded and validated completely before
// it is swapped in atomically; an invalid one leaves the old one in force and is reported with
// its key path. Checks in flight finish on the configuration they started with.
//
// Changes are noticed through file-system events on the directories holding the files (which
// also catches the symlink swaps of Kubernetes ConfigMap and Secret volumes) and, as a fallback
// for file systems without events, by polling a digest of the files' contents.
package reload

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/certbind/certbind/policy"
)

// Config is what a Reloader needs.
type Config struct {
	Path     string // the configuration file
	Engine   *policy.Engine
	Load     policy.LoadOptions
	OnLoad   func(cfg *policy.Config, err error) // after every load attempt (logs, metrics)
	Debounce time.Duration                       // quiet time after an event before reloading; default 200ms
	Poll     time.Duration                       // digest poll interval; default 10s; negative disables
}

// Reloader reloads an Engine's configuration.
type Reloader struct {
	c Config

	mu     sync.Mutex // serializes loads
	digest [32]byte   // of the files behind the configuration in force
	files  []string   // the configuration file and every file it read
}

// New makes a Reloader. It loads nothing until Load or Run.
func New(c Config) *Reloader {
	if c.Debounce <= 0 {
		c.Debounce = 200 * time.Millisecond
	}
	if c.Poll == 0 {
		c.Poll = 10 * time.Second
	}
	return &Reloader{c: c}
}

// Load reads, validates and compiles the configuration and swaps it in. On error the
// configuration in force is kept.
func (r *Reloader) Load() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.loadLocked(false)
}

// loadLocked loads; with ifChanged it skips the work when no file's content changed.
func (r *Reloader) loadLocked(ifChanged bool) error {
	if ifChanged && r.files != nil {
		if d, err := digest(r.files); err == nil && d == r.digest {
			return nil
		}
	}
	cfg, err := policy.LoadConfig(r.c.Path, r.c.Load)
	if err == nil {
		// The digest of what the load read, not of the files now: a write that lands during
		// the load then differs from it, and the next check reloads.
		r.c.Engine.Swap(cfg)
		r.files, r.digest = append([]string{r.c.Path}, cfg.Files()...), cfg.Digest()
	}
	if r.c.OnLoad != nil {
		r.c.OnLoad(cfg, err)
	}
	return err
}

// Files returns the files behind the configuration in force.
func (r *Reloader) Files() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.files...)
}

// Run watches the files and reloads on change until ctx ends. Reload requests (SIGHUP) arrive on
// trigger. Run does not load first: call Load before it.
func (r *Reloader) Run(ctx context.Context, trigger <-chan struct{}) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	watched := map[string]bool{}
	watch := func() {
		for _, f := range r.Files() {
			dir := filepath.Dir(f)
			if !watched[dir] && w.Add(dir) == nil {
				watched[dir] = true
			}
		}
	}
	watch()
	if len(watched) == 0 {
		if err := w.Add(filepath.Dir(r.c.Path)); err == nil {
			watched[filepath.Dir(r.c.Path)] = true
		}
	}
	var poll <-chan time.Time
	if r.c.Poll > 0 {
		t := time.NewTicker(r.c.Poll)
		defer t.Stop()
		poll = t.C
	}
	var debounce <-chan time.Time
	reload := func(ifChanged bool) {
		r.mu.Lock()
		_ = r.loadLocked(ifChanged) // reported through OnLoad
		r.mu.Unlock()
		watch()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-trigger:
			reload(false)
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("reload: watcher closed")
			}
			if ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Remove|fsnotify.Rename) != 0 {
				debounce = time.After(r.c.Debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("reload: watcher closed")
			}
			if r.c.OnLoad != nil {
				r.c.OnLoad(nil, err)
			}
		case <-debounce:
			debounce = nil
			reload(true)
		case <-poll:
			reload(true)
		}
	}
}

// digest hashes the files' names and contents; a missing file is an error.
func digest(files []string) ([32]byte, error) {
	h := sha256.New()
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return [32]byte{}, err
		}
		io.WriteString(h, f)
		h.Write([]byte{0})
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return [32]byte{}, err
		}
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out, nil
}
