package server

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/wardenauthz/warden/authz"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/ratelimit"
)

// Reloadable are the warden.yaml keys a reload applies while serving; a
// change to any other key is named in the log as needing a restart.
var Reloadable = []string{
	"policy.routes", "policy.on_error", "policy.unrouted",
	"ratelimit.rules",
	"decision_log.sample_allow",
}

// live is the rate limiter of cfg's rules over the store's counter.
func (s *Service) live(cfg *config.Config) *authz.Live {
	l := &authz.Live{}
	if len(cfg.RateLimit.Rules) > 0 {
		l.RateLimiter = ratelimit.NewLimiter(cfg.RateLimit.Rules, s.counter, s.now)
	}
	return l
}

// ReloadConfig reads the config file again and applies its reloadable keys
// (Reloadable) all or nothing: the routes, the policy directory read again
// with them, and the rate-limit rules become one new generation that the
// next Check uses whole; a Check in flight finishes with the one it
// started with. A file that does not load or validate changes nothing:
// the last good config keeps serving and the error (file:line: key: ...)
// is logged, counted (warden_config_reloads_total{result="error"}) and
// shown on /readyz. Changed keys that need a restart are logged by name.
func (s *Service) ReloadConfig() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.Config.Embedded {
		s.logger.Warn("the embedded quick start config cannot change; start with --config FILE to reload one", "config", s.Config.File)
		return nil
	}
	err := s.reloadConfig()
	result := "ok"
	if err != nil {
		result = "error"
		s.logger.Error("config reload failed; keeping the last good config", "config", s.Config.File, "err", err)
	}
	if err == nil {
		s.configErr.Store(nil)
	} else {
		s.configErr.Store(&err)
	}
	s.configReloads.WithLabelValues(result).Inc() // last: the status is in place when it is counted
	return err
}

func (s *Service) reloadConfig() error {
	cfg, err := config.Load(s.Config.File)
	if err != nil {
		return err
	}
	src := s.policySrc
	src.SkipErrors = cfg.Policy.OnError == "skip"
	src.AllowUnrouted = cfg.Policy.Unrouted == "allow_policies"
	if err := s.Policies.Reconfigure(src, cfg.Policy.Routes, s.live(cfg)); err != nil {
		return err
	}
	s.Authorizer.SetSampleAllow(*cfg.DecisionLog.SampleAllow)
	for _, k := range RestartNeeded(s.Config, cfg) {
		s.logger.Warn(k + " changed: restart to apply")
	}
	s.logger.Info("config reloaded", "config", s.Config.File, "routes", len(cfg.Policy.Routes),
		"ratelimit_rules", len(cfg.RateLimit.Rules), "policies", s.Policies.Current().Len())
	return nil
}

// ConfigError is the error of the latest config reload (nil when it
// worked or none was tried).
func (s *Service) ConfigError() error {
	if p := s.configErr.Load(); p != nil {
		return *p
	}
	return nil
}

// RestartNeeded lists the keys (key paths, never values) that differ
// between the running config and a new one and that a reload does not
// apply.
func RestartNeeded(running, next *config.Config) []string {
	var out []string
	var walk func(a, b reflect.Value, path string)
	walk = func(a, b reflect.Value, path string) {
		for _, r := range Reloadable {
			if path == r {
				return
			}
		}
		if a.Kind() == reflect.Struct && a.Type().PkgPath() != "time" {
			t := a.Type()
			for i := 0; i < t.NumField(); i++ {
				f := t.Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if !f.IsExported() || name == "-" {
					continue
				}
				if name == "" {
					name = strings.ToLower(f.Name) // yaml's default key
				}
				p := name
				if path != "" {
					p = path + "." + name
				}
				walk(a.Field(i), b.Field(i), p)
			}
			return
		}
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			out = append(out, path)
		}
	}
	walk(reflect.ValueOf(*running), reflect.ValueOf(*next), "")
	return out
}

// WatchConfig reloads the config (ReloadConfig) when its file changes
// (with policy.reload: watch) and on every value of hup (SIGHUP: serve
// passes signal.Notify's channel), until ctx ends.
func (s *Service) WatchConfig(ctx context.Context, hup <-chan os.Signal) {
	var events <-chan fsnotify.Event
	var errs <-chan error
	if !s.Config.Embedded && s.Config.Policy.Reload == "watch" {
		w, err := fsnotify.NewWatcher()
		if err == nil {
			if err = w.Add(filepath.Dir(s.Config.File)); err != nil {
				w.Close()
			}
		}
		if err != nil {
			s.logger.Warn("cannot watch the config file; reload it with SIGHUP", "config", s.Config.File, "err", err)
		} else {
			events, errs = w.Events, w.Errors
			go func() { <-ctx.Done(); w.Close() }()
		}
	}
	base := filepath.Base(s.Config.File)
	go func() {
		var timer <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				s.logger.Info("SIGHUP: reloading the config", "config", s.Config.File)
				_ = s.ReloadConfig()
			case ev, ok := <-events:
				if !ok {
					events = nil
					continue
				}
				// The file itself, or a Kubernetes ConfigMap's ..data swap.
				if n := filepath.Base(ev.Name); n == base || n == "..data" {
					timer = time.After(200 * time.Millisecond)
				}
			case err, ok := <-errs:
				if !ok {
					errs = nil
					continue
				}
				s.logger.Warn("config watch", "err", err)
			case <-timer:
				timer = nil
				_ = s.ReloadConfig()
			}
		}
	}()
}
