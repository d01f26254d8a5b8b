package policy

import (
	"strings"

	"github.com/wardenauthz/warden/internal/fielderr"
)

// Config is the policy section of warden.yaml.
type Config struct {
	Dir    string        `yaml:"dir"`
	Reload string        `yaml:"reload"`
	Routes []RouteConfig `yaml:"routes"`
	// OnError is what a forbid whose condition errors does: "deny" (the
	// default: it could have applied, so the request is denied with reason
	// policy_error) or "skip" (Cedar's own semantics: it is ignored).
	OnError string `yaml:"on_error"`
	// Unrouted is what a request to a service that has routes but matches
	// none of them gets: "deny" (the default: 403 route_unknown, before
	// Cedar) or "allow_policies" (Cedar decides it as the route-less
	// Action::"<METHOD>").
	Unrouted string `yaml:"unrouted"`
}

// RouteConfig maps requests to a Cedar action and resource.
type RouteConfig struct {
	Service  string `yaml:"service"`
	Method   string `yaml:"method"`
	Path     string `yaml:"path"`
	Host     string `yaml:"host"`
	Resource string `yaml:"resource"`
}

// SetDefaults fills in unset fields.
func (c *Config) SetDefaults() {
	if c.Dir == "" {
		c.Dir = "./policies"
	}
	if c.Reload == "" {
		c.Reload = "watch"
	}
	if c.OnError == "" {
		c.OnError = "deny"
	}
	if c.Unrouted == "" {
		c.Unrouted = "deny"
	}
	for i := range c.Routes {
		if c.Routes[i].Method == "" {
			c.Routes[i].Method = "*"
		}
	}
}

// Validate reports every problem at once, as field errors (fielderr) with
// key paths relative to this section.
func (c *Config) Validate() error {
	var errs fielderr.List
	if c.Reload != "watch" && c.Reload != "off" {
		errs = append(errs, fielderr.Errorf("reload", "must be watch or off, got %q", c.Reload))
	}
	if c.OnError != "deny" && c.OnError != "skip" {
		errs = append(errs, fielderr.Errorf("on_error", "must be deny or skip, got %q", c.OnError))
	}
	if c.Unrouted != "deny" && c.Unrouted != "allow_policies" {
		errs = append(errs, fielderr.Errorf("unrouted", "must be deny or allow_policies, got %q", c.Unrouted))
	}
	if _, err := compileRoutes(c.Routes); err != nil {
		errs = append(errs, fielderr.From(err)...)
	}
	return errs.Err()
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) {
			return false
		}
	}
	return true
}
