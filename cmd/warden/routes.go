package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/wardenauthz/warden/policy"
	"github.com/wardenauthz/warden/policy/openapi"
)

func cmdRoutesImport(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("routes import", stderr)
	service := fs.String("service", "", "each route's service (matched against the service context extension)")
	resType := fs.String("resource-type", "", "the resource type of every route with a path parameter (default: singularised from the path)")
	basePath := fs.String("base-path", "", "put this before every path instead of the first server URL's path (\"/\" for none)")
	host := fs.Bool("host", false, "set each route's host from the first server URL")
	out := fs.String("out", "", "write DIR/routes.yaml and DIR/schema.cedarschema instead of printing")
	schemaOnly := fs.Bool("schema", false, "print the schema fragment instead of the routes")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: warden routes import [flags] OPENAPI_FILE (warden routes import --help for more)")
		return exitError
	}
	file := fs.Arg(0)
	b, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "warden routes import: %v\n", err)
		return exitError
	}
	o := openapi.Options{Service: *service, ResourceType: *resType, Host: *host}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "base-path" {
			o.BasePath = basePath
		}
	})
	res, err := openapi.Import(file, b, o)
	if err != nil {
		printErrors(stderr, err)
		return exitError
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	cfgs := make([]policy.RouteConfig, len(res.Routes))
	for i, r := range res.Routes {
		cfgs[i] = r.RouteConfig
	}
	sc, err := policy.RouteSchema(cfgs)
	if err != nil {
		printErrors(stderr, err)
		return exitError
	}
	sb, err := sc.MarshalCedar()
	if err != nil {
		printErrors(stderr, err)
		return exitError
	}
	source := filepath.Base(file)
	if res.Title != "" {
		source += " (" + strings.TrimSpace(res.Title+" "+res.Version) + ")"
	}
	routesText := routesYAML(source, res)
	schemaText := fmt.Sprintf("// Route actions imported from %s by warden routes import: each in its\n// Action::\"<METHOD>\" and read or write group, with the context Warden builds.\n// Warden derives the same from policy.routes; declare attributes here\n// (entity Order in Service {owner: User};) as schema.cedarschema.\n", source) + string(sb)
	if *out == "" {
		if *schemaOnly {
			fmt.Fprint(stdout, schemaText)
		} else {
			fmt.Fprint(stdout, routesText)
		}
		return exitOK
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintf(stderr, "warden routes import: %v\n", err)
		return exitError
	}
	files := []struct{ name, text string }{{"routes.yaml", routesText}, {policy.SchemaFile, schemaText}}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(*out, f.name)); err == nil {
			fmt.Fprintf(stderr, "warden routes import: %s exists; not overwriting it\n", filepath.Join(*out, f.name))
			return exitError
		} else if !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "warden routes import: %v\n", err)
			return exitError
		}
	}
	for _, f := range files {
		p := filepath.Join(*out, f.name)
		if err := os.WriteFile(p, []byte(f.text), 0o644); err != nil {
			fmt.Fprintf(stderr, "warden routes import: %v\n", err)
			return exitError
		}
		fmt.Fprintf(stdout, "wrote %s\n", p)
	}
	fmt.Fprintf(stdout, "%d routes\n", len(res.Routes))
	return exitOK
}

// routesYAML is the routes as a policy.routes block, one flow mapping a
// line, each with its operation and action as a comment.
func routesYAML(source string, res *openapi.Result) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Routes imported from %s by warden routes import.\n# Put them under policy: in warden.yaml.\nroutes:\n", source)
	for _, r := range res.Routes {
		var kv []string
		add := func(k, v string) {
			if v != "" {
				kv = append(kv, k+": "+yamlScalar(v))
			}
		}
		add("service", r.Service)
		add("method", r.Method)
		add("path", r.Path)
		add("host", r.Host)
		add("resource", r.Resource)
		comment := fmt.Sprintf("Action::%q", r.Method+" "+r.Path)
		if r.OperationID != "" {
			comment = r.OperationID + ": " + comment
		}
		fmt.Fprintf(&b, "  - {%s}   # %s\n", strings.Join(kv, ", "), strings.ReplaceAll(comment, "\n", " "))
	}
	return b.String()
}

// yamlScalar is s as a YAML flow scalar: plain when that reads back as s,
// else single-quoted.
func yamlScalar(s string) string {
	plain := s != "" && !strings.ContainsAny(s, "{}[]:,#&*!|>'\"%@` \t") && !strings.ContainsAny(s[:1], "-?")
	if plain {
		switch strings.ToLower(s) {
		case "true", "false", "null", "yes", "no", "on", "off", "~":
			plain = false
		}
	}
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
