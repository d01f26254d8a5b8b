package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/wardenauthz/warden/authz/config"
)

// Exit codes.
const (
	exitOK    = 0
	exitDeny  = 1 // check: denied; validate/test: problems found
	exitError = 2
)

const usage = `warden — Envoy external authorization with Cedar policies

Usage:
  warden serve [--config FILE]              run the ext_authz server (no config: embedded quick start)
  warden check [flags]                      ask for a decision, as Envoy would
  warden dev token --sub SUB [flags]        issue a dev issuer token
  warden policy validate [--config FILE]    check policies, schema, routes and actions
  warden policy schema [--config FILE]      print the Cedar schema of Warden's model (merged with yours)
  warden policy test [--config FILE] PATH...
                                            run policy tests (Cedar CLI JSON, or Warden's HTTP YAML)
  warden policy status [--server ADDR]      the policy set a running Warden serves (admin API)
  warden config validate FILE               check a config file (and its policies)
  warden revoke --jti ID | --subject I|SUB  revoke tokens (Redis store or admin API); 'warden revoke list'
  warden logs [--config FILE | --server ADDR] [filters]
                                            query decision logs (file or Redis stream sink, or admin API)
  warden envoy validate FILE...             check Envoy bootstrap/listener YAML offline, as Envoy loads it
  warden routes import [--service S] OPENAPI_FILE
                                            routes and schema actions from an OpenAPI 3 document
  warden replay --policies DIR [--since 24h]
                                            replay logged decisions against candidate policies; exit 1 on any change
  warden access-review [--since 30d] [--principal P | --group G] [--suggest DIR]
                                            grants versus use, unused policies, and a narrower policy set


Run 'warden COMMAND --help' for a command's flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, stdout, stderr)
	case "check":
		return cmdCheck(ctx, rest, stdout, stderr)
	case "dev":
		if len(rest) > 0 && rest[0] == "token" {
			return cmdDevToken(rest[1:], stdout, stderr)
		}
		fmt.Fprintln(stderr, "usage: warden dev token --sub SUB [--groups a,b] [--scope 'x y'] [--ttl 1h] [--claim k=v]")
		return exitError
	case "policy":
		if len(rest) > 0 && rest[0] == "validate" {
			return cmdPolicyValidate(rest[1:], stdout, stderr)
		}
		if len(rest) > 0 && rest[0] == "status" {
			return cmdPolicyStatus(ctx, rest[1:], stdout, stderr)
		}
		if len(rest) > 0 && rest[0] == "test" {
			return cmdPolicyTest(ctx, rest[1:], stdout, stderr)
		}
		if len(rest) > 0 && rest[0] == "schema" {
			return cmdPolicySchema(rest[1:], stdout, stderr)
		}
		fmt.Fprintln(stderr, "usage: warden policy validate [--config FILE] | warden policy test [--config FILE] PATH... | warden policy schema [--config FILE] | warden policy status [--server ADDR]")
		return exitError
	case "logs":
		return cmdLogs(ctx, rest, stdout, stderr)
	case "replay":
		return cmdReplay(ctx, rest, stdout, stderr)
	case "access-review":
		return cmdAccessReview(ctx, rest, stdout, stderr)
	case "revoke":
		return cmdRevoke(ctx, rest, stdout, stderr)
	case "config":
		if len(rest) > 0 && rest[0] == "validate" {
			return cmdConfigValidate(rest[1:], stdout, stderr)
		}
		fmt.Fprintln(stderr, "usage: warden config validate FILE")
		return exitError
	case "routes":
		return cmdRoutes(rest, stdout, stderr)
	case "envoy":
		if len(rest) > 0 && rest[0] == "validate" {
			return cmdEnvoyValidate(rest[1:], stdout, stderr)
		}
		fmt.Fprintln(stderr, "usage: warden envoy validate FILE...")
		return exitError
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "warden: unknown command %q\n\n%s", cmd, usage)
	return exitError
}

// newFlags makes a FlagSet that reports to stderr.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("warden "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses; it returns an exit code when the caller should stop.
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, true
		}
		return exitError, true
	}
	return 0, false
}

// loadConfig loads FILE, else $WARDEN_CONFIG, else the embedded quick start.
func loadConfig(file string) (*config.Config, error) {
	if file == "" {
		file = os.Getenv("WARDEN_CONFIG")
	}
	if file == "" {
		return config.LoadEmbedded()
	}
	return config.Load(file)
}

// printJSON writes v as indented JSON (the commands' --output json).
func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // policy text (&&, <) as written
	_ = enc.Encode(v)
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ", ") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// printErrors prints every joined error on its own line.
func printErrors(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		if line != "" {
			fmt.Fprintln(w, line)
		}
	}
}
