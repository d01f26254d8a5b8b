package ratelimit

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wardenauthz/warden/internal/fielderr"
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

// Validate reports every problem, as field errors (fielderr) with key
// paths relative to this section.
func (c *Config) Validate() error {
	var errs fielderr.List
	bad := func(path, format string, args ...any) {
		errs = append(errs, fielderr.Errorf(path, format, args...))
	}
	names := map[string]bool{}
	for i, r := range c.Rules {
		p := fmt.Sprintf("rules[%d]", i)
		switch {
		case r.Name == "":
			bad(p+".name", "is required")
		case strings.ContainsAny(r.Name, "\"\\,;= "):
			bad(p+".name", "%q must not contain quotes, commas, semicolons, '=' or spaces", r.Name)
		case names[r.Name]:
			bad(p+".name", "%q is used twice", r.Name)
		}
		names[r.Name] = true
		if r.Limit <= 0 {
			bad(p+".limit", "must be positive")
		}
		if r.Per < time.Second {
			bad(p+".per", "must be at least 1s, got %s", r.Per)
		}
		if r.Burst < 0 {
			bad(p+".burst", "must not be negative")
		}
		switch r.When.PrincipalType {
		case "", "User", "Client", "Workload", "Anonymous":
		default:
			bad(p+".when.principal_type", "%q is not User, Client, Workload or Anonymous", r.When.PrincipalType)
		}
		switch r.When.ActionGroup {
		case "", "read", "write":
		default:
			bad(p+".when.action_group", "%q is not read or write", r.When.ActionGroup)
		}
		for j, k := range r.Key {
			name, arg, hasArg := strings.Cut(k, ":")
			switch {
			case hasArg && (name == "header" || name == "claim") && arg != "":
			case !hasArg && slices.Contains(keyParts, k):
			default:
				bad(fmt.Sprintf("%s.key[%d]", p, j), "%q is not one of %s, header:NAME, claim:NAME", k, strings.Join(keyParts, ", "))
			}
		}
	}
	return errs.Err()
}
