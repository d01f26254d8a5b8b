package ratelimit

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Config is the ratelimit section of warden.yaml.
type Config struct {
	FailOpen *bool  `yaml:"fail_open"`
	Rules    []Rule `yaml:"rules"`
}

// Rule is one limit: requests matching When share a GCRA bucket per Key.
type Rule struct {
	Name  string        `yaml:"name"`
	When  When          `yaml:"when"`
	Key   []string      `yaml:"key"`
	Limit int           `yaml:"limit"`
	Per   time.Duration `yaml:"per"`
	Burst int           `yaml:"burst"`
}

// When selects the requests a rule applies to; empty fields match anything.
type When struct {
	PrincipalType string `yaml:"principal_type"`
	Principal     string `yaml:"principal"`
	Group         string `yaml:"group"`
	Action        string `yaml:"action"`
	ActionGroup   string `yaml:"action_group"`
	Service       string `yaml:"service"`
	Route         string `yaml:"route"`
}

// SetDefaults fills in unset fields.
func (c *Config) SetDefaults() {
	if c.FailOpen == nil {
		t := true
		c.FailOpen = &t
	}
	for i := range c.Rules {
		r := &c.Rules[i]
		if r.Burst == 0 {
			r.Burst = r.Limit
		}
		if len(r.Key) == 0 {
			r.Key = []string{"principal"}
		}
	}
}

var keyParts = []string{"principal", "client_id", "source_ip", "service", "route", "action"}

// Validate reports every problem, each message starting with its key path.
func (c *Config) Validate() error {
	var errs []error
	names := map[string]bool{}
	for i, r := range c.Rules {
		p := fmt.Sprintf("rules[%d]", i)
		switch {
		case r.Name == "":
			errs = append(errs, fmt.Errorf("%s.name: is required", p))
		case strings.ContainsAny(r.Name, "\"\\,;= "):
			errs = append(errs, fmt.Errorf("%s.name: %q must not contain quotes, commas, semicolons, '=' or spaces", p, r.Name))
		case names[r.Name]:
			errs = append(errs, fmt.Errorf("%s.name: %q is used twice", p, r.Name))
		}
		names[r.Name] = true
		if r.Limit <= 0 {
			errs = append(errs, fmt.Errorf("%s.limit: must be positive", p))
		}
		if r.Per < time.Second {
			errs = append(errs, fmt.Errorf("%s.per: must be at least 1s, got %s", p, r.Per))
		}
		if r.Burst < 0 {
			errs = append(errs, fmt.Errorf("%s.burst: must not be negative", p))
		}
		switch r.When.PrincipalType {
		case "", "User", "Client", "Workload", "Anonymous":
		default:
			errs = append(errs, fmt.Errorf("%s.when.principal_type: %q is not User, Client, Workload or Anonymous", p, r.When.PrincipalType))
		}
		switch r.When.ActionGroup {
		case "", "read", "write":
		default:
			errs = append(errs, fmt.Errorf("%s.when.action_group: %q is not read or write", p, r.When.ActionGroup))
		}
		for j, k := range r.Key {
			name, arg, hasArg := strings.Cut(k, ":")
			switch {
			case hasArg && (name == "header" || name == "claim") && arg != "":
			case !hasArg && slices.Contains(keyParts, k):
			default:
				errs = append(errs, fmt.Errorf("%s.key[%d]: %q is not one of %s, header:NAME, claim:NAME", p, j, k, strings.Join(keyParts, ", ")))
			}
		}
	}
	return errors.Join(errs...)
}
