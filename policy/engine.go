package policy

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Engine serves the current Set and replaces it on reload, all or nothing.
type Engine struct {
	// mu serialises loads (a policy reload and a config reload) and guards
	// src, routes and attached.
	mu       sync.Mutex
	src      Source
	routes   []RouteConfig
	attached any
	cur      atomic.Pointer[Set]
	loaded   atomic.Pointer[time.Time] // when cur was loaded
	last     atomic.Pointer[reloadStatus]
	onReload func(err error, took time.Duration)
}

// EngineOption configures an Engine at construction.
type EngineOption func(*Engine)

// OnReload has the engine tell f of every load attempt and how long it
// took: NewEngine's first load (failed or not) and every Reload.
func OnReload(f func(err error, took time.Duration)) EngineOption {
	return func(e *Engine) { e.onReload = f }
}

type reloadStatus struct {
	at  time.Time
	err error
}

// NewEngine loads src; it fails if the first load fails.
func NewEngine(src Source, routes []RouteConfig, opts ...EngineOption) (*Engine, error) {
	e := &Engine{src: src, routes: routes}
	for _, o := range opts {
		o(e)
	}
	start := time.Now()
	s, err := Load(src, routes)
	now := time.Now()
	e.reloaded(err, now.Sub(start))
	if err != nil {
		return nil, err
	}
	e.cur.Store(s)
	e.loaded.Store(&now)
	e.last.Store(&reloadStatus{at: now})
	return e, nil
}

// Current is the set in service.
func (e *Engine) Current() *Set { return e.cur.Load() }

// LastError is the error of the latest reload attempt (nil when it worked).
func (e *Engine) LastError() error { return e.last.Load().err }

// Status tells when the set in service was loaded, and when the latest
// reload was tried with its error (nil when it worked).
func (e *Engine) Status() (loaded, lastTry time.Time, lastErr error) {
	l := e.last.Load()
	return *e.loaded.Load(), l.at, l.err
}

// Attach gives the set in service (and every set a reload loads) x, which
// Set.Attached returns: what must change together with the policies and
// routes, such as the rate-limit rules of the same warden.yaml.
func (e *Engine) Attach(x any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.attached = x
	cp := *e.cur.Load() // a Set is immutable: a shallow copy is a new one
	cp.attached = x
	e.cur.Store(&cp)
}

// Reconfigure loads src with routes (a changed warden.yaml), all or
// nothing: on success the new set, with attached, replaces the current one
// at once and later reloads use src and routes; on error nothing changes.
func (e *Engine) Reconfigure(src Source, routes []RouteConfig, attached any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := Load(src, routes)
	if err != nil {
		return err
	}
	s.attached = attached
	e.src, e.routes, e.attached = src, routes, attached
	now := time.Now()
	e.cur.Store(s)
	e.loaded.Store(&now)
	e.last.Store(&reloadStatus{at: now})
	return nil
}

// Reload loads the source again; on error the current set keeps serving.
func (e *Engine) Reload() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	start := time.Now()
	s, err := Load(e.src, e.routes)
	now := time.Now()
	if err == nil {
		s.attached = e.attached
		e.cur.Store(s)
		e.loaded.Store(&now)
	}
	e.last.Store(&reloadStatus{at: now, err: err})
	e.reloaded(err, now.Sub(start))
	return err
}

// reloaded tells the OnReload hook of a load attempt.
func (e *Engine) reloaded(err error, took time.Duration) {
	if e.onReload != nil {
		e.onReload(err, took)
	}
}

// Watch reloads when anything in dir (a directory on disk) changes, until
// ctx ends. It watches the directory, not the files, so that Kubernetes
// ConfigMap symlink swaps are seen; bursts of events cause one reload.
func (e *Engine) Watch(ctx context.Context, dir string, log *slog.Logger) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	if err := watchTree(w, dir); err != nil {
		w.Close()
		return err
	}
	go func() {
		defer w.Close()
		var timer <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-w.Events:
				if !ok {
					return
				}
				timer = time.After(200 * time.Millisecond)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Warn("policy watch", "err", err)
			case <-timer:
				timer = nil
				if _, err := os.Stat(dir); err != nil {
					log.Error("policy directory gone; keeping the last good set", "dir", dir, "err", err)
					continue
				}
				// Subdirectories made since are watched from now on.
				if err := watchTree(w, dir); err != nil {
					log.Warn("policy watch", "err", err)
				}
				if err := e.Reload(); err != nil {
					log.Error("policy reload failed; keeping the last good set", "err", err)
				} else {
					log.Info("policies reloaded", "policies", e.Current().Len())
				}
			}
		}
	}()
	return nil
}

// watchTree watches dir and its subdirectories (not those whose names start
// with ".", as the loader skips them); adding a watched one again is a no-op.
func watchTree(w *fsnotify.Watcher, dir string) error {
	if err := w.Add(dir); err != nil {
		return err
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir || !d.IsDir() {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		return w.Add(p)
	})
}
