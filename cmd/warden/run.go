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
  warden apikey new --name NAME             make an API key: the key once, and the hash line to store
  warden logs [--config FILE | --server ADDR] [filters]
                                            query decision logs (file or Redis stream sink, or admin API)
  warden envoy validate [--strict] FILE...  check Envoy bootstrap/listener YAML offline, as Envoy loads it; security lint
  warden routes import [--service S] OPENAPI_FILE
                                            routes and schema actions from an OpenAPI 3 document
  warden replay --policies DIR [--since 24h]
                                            replay logged decisions against candidate policies; exit 1 when a decision changes
  warden access-review [--since 30d] [--principal P | --group G] [--suggest DIR]
                                            grants versus use, unused policies, and a narrower policy set
  warden version                            module version, VCS revision, Go and cedar-go versions


Run 'warden COMMAND --help' (or 'warden help COMMAND') for a command's description, flags and examples.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError
	}
	cmd, rest := args[0], args[1:]
	// 'warden policy --help', 'warden help logs', 'warden help policy test'
	if g, ok := groups[cmd]; ok && (len(rest) == 0 || isHelp(rest[0])) {
		if len(rest) == 0 {
			fmt.Fprint(stderr, g)
			return exitError
		}
		fmt.Fprint(stdout, g)
		return exitOK
	}
	if cmd == "help" && len(rest) > 0 {
		return run(ctx, append(rest, "--help"), stdout, stderr)
	}
	// Asked for, help goes to stdout (so it can be paged); a usage error
	// still goes to stderr.
	for _, a := range rest {
		if a == "--" {
			break
		}
		if isHelp(a) {
			stderr = stdout
			break
		}
	}
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
	case "apikey":
		if len(rest) > 0 && rest[0] == "new" {
			return cmdAPIKeyNew(rest[1:], stdout, stderr)
		}
		fmt.Fprint(stderr, groups["apikey"])
		return exitError
	case "config":
		if len(rest) > 0 && rest[0] == "validate" {
			return cmdConfigValidate(rest[1:], stdout, stderr)
		}
		fmt.Fprintln(stderr, "usage: warden config validate FILE")
		return exitError
	case "routes":
		if len(rest) > 0 && rest[0] == "import" {
			return cmdRoutesImport(rest[1:], stdout, stderr)
		}
		fmt.Fprint(stderr, groups["routes"])
		return exitError
	case "envoy":
		if len(rest) > 0 && rest[0] == "validate" {
			return cmdEnvoyValidate(rest[1:], stdout, stderr)
		}
		fmt.Fprintln(stderr, "usage: warden envoy validate FILE...")
		return exitError
	case "version", "--version":
		return cmdVersion(rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "warden: unknown command %q\n\n%s", cmd, usage)
	return exitError
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// groups are the commands with subcommands: what 'warden GROUP' and
// 'warden GROUP --help' print.
var groups = map[string]string{
	"policy": `Usage:
  warden policy validate [--config FILE]        check policies, schema, entities, routes and actions
  warden policy test [--config FILE] PATH...    run policy tests (Cedar CLI JSON, or Warden's HTTP YAML)
  warden policy status [--server ADDR]          the policy set a running Warden serves (admin API)

Run 'warden policy SUBCOMMAND --help' for its flags and examples.
`,
	"apikey": `Usage:
  warden apikey new --name NAME             make an API key and its key file entry

Run 'warden apikey new --help' for its flags and examples.
`,
	"dev": `Usage:
  warden dev token --sub SUB [flags]            issue a dev issuer token

Run 'warden dev token --help' for its flags and examples.
`,
	"config": `Usage:
  warden config validate FILE                   check a config file (and its policies)

Run 'warden config validate --help' for more.
`,
	"envoy": `Usage:
  warden envoy validate [--strict] FILE...      check Envoy bootstrap/listener YAML offline, with a security lint

Run 'warden envoy validate --help' for what is checked and the exit codes.
`,
	"routes": `Usage:
  warden routes import [flags] OPENAPI_FILE     routes and schema actions from an OpenAPI 3 document

Run 'warden routes import --help' for its flags and examples.
`,
}

// newFlags makes a FlagSet that reports to stderr; its --help is the
// command's help text, then its flags.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("warden "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if _, ok := help[name]; ok {
		// After a flag error, a pointer to the help rather than all of it.
		fs.Usage = func() { fmt.Fprintf(fs.Output(), "Run '%s --help' for its flags and examples.\n", fs.Name()) }
	}
	return fs
}

// printHelp prints the command's help text, then its flags.
func printHelp(fs *flag.FlagSet) {
	fmt.Fprint(fs.Output(), help[strings.TrimPrefix(fs.Name(), "warden ")], "\nFlags:\n")
	fs.PrintDefaults()
}

// parseFlags parses; it returns an exit code when the caller should stop.
// -h, -help or --help (before any "--") prints the help, exit 0.
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if _, ok := help[strings.TrimPrefix(fs.Name(), "warden ")]; ok && isHelp(a) {
			printHelp(fs)
			return exitOK, true
		}
	}
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
