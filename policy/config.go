package policy

import (
	"errors"
	"fmt"
	"strings"
)

// Config is the policy section of warden.yaml.
type Config struct {
	Dir    string        `yaml:"dir"`
	Reload string        `yaml:"reload"`
	Routes []RouteConfig `yaml:"routes"`
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
	for i := range c.Routes {
		if c.Routes[i].Method == "" {
			c.Routes[i].Method = "*"
		}
	}
}

// Validate reports every problem at once, each message starting with the
// key path relative to this section.
func (c *Config) Validate() error {
	var errs []error
	if c.Reload != "watch" && c.Reload != "off" {
		errs = append(errs, fmt.Errorf("reload: must be watch or off, got %q", c.Reload))
	}
	if _, err := compileRoutes(c.Routes); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
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
