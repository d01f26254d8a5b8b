package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/identity"
)

func cmdDevToken(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("dev token", stderr)
	cfgFile := fs.String("config", "", "config whose dev issuer signs (default: $WARDEN_CONFIG, else the embedded quick start)")
	sub := fs.String("sub", "", "subject (required)")
	groups := fs.String("groups", "", "comma-separated groups")
	scope := fs.String("scope", "", "space-separated scopes")
	ttl := fs.Duration("ttl", time.Hour, "lifetime; negative for an already expired token")
	var claims multi
	fs.Var(&claims, "claim", "extra claim k=v (v as JSON when it parses, else a string); repeatable")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if *sub == "" {
		fmt.Fprintln(stderr, "warden dev token: --sub is required")
		return exitError
	}
	cfg, err := loadConfig(*cfgFile)
	if err != nil {
		printErrors(stderr, err)
		return exitError
	}
	if !cfg.Identity.DevIssuer.Enabled {
		fmt.Fprintf(stderr, "warden dev token: %s does not enable identity.dev_issuer\n", cfg.File)
		return exitError
	}
	key, err := server.DevKey(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "warden dev token: %v\n", err)
		return exitError
	}
	o := identity.DevTokenOptions{Subject: *sub, Scope: *scope, TTL: *ttl, Claims: map[string]any{}, Now: time.Now()}
	if *ttl < 0 {
		o.Now = o.Now.Add(*ttl - time.Hour) // issued an hour before it expired
		o.TTL = time.Hour
	}
	if *groups != "" {
		o.Groups = strings.Split(*groups, ",")
	}
	for _, c := range claims {
		k, v, ok := strings.Cut(c, "=")
		if !ok || k == "" {
			fmt.Fprintf(stderr, "warden dev token: --claim %q: want k=v\n", c)
			return exitError
		}
		var jv any
		if err := json.Unmarshal([]byte(v), &jv); err == nil {
			o.Claims[k] = jv
		} else {
			o.Claims[k] = v
		}
	}
	tok, err := identity.SignDevToken(key, o)
	if err != nil {
		fmt.Fprintf(stderr, "warden dev token: %v\n", err)
		return exitError
	}
	fmt.Fprintln(stdout, tok)
	return exitOK
}
