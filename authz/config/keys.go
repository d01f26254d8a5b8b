package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wardenauthz/warden/internal/fielderr"
)

// walkKeys checks every mapping key of the document against Config's yaml
// tags, so that an unknown key is named by its key path ("policy.rotues")
// with a did-you-mean, and records the key path of every line holding a
// value (for yaml's own type errors, which name only a line and a Go type).
func walkKeys(root *yaml.Node) (issues fielderr.List, lines map[int]string) {
	lines = map[int]string{}
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	all := knownPaths(reflect.TypeOf(Config{}), "", 0)
	var walk func(n *yaml.Node, t reflect.Type, path string, depth int)
	walk = func(n *yaml.Node, t reflect.Type, path string, depth int) {
		if n == nil || depth > 32 {
			return
		}
		if n.Kind == yaml.AliasNode {
			n = n.Alias
			if n == nil {
				return
			}
		}
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if path != "" {
			if _, seen := lines[n.Line]; !seen {
				lines[n.Line] = path
			}
		}
		switch t.Kind() {
		case reflect.Struct:
			if n.Kind != yaml.MappingNode || t.PkgPath() == "time" {
				return
			}
			fields := yamlFields(t)
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Value == "<<" { // merge key
					walk(v, t, path, depth+1)
					continue
				}
				p := join(path, k.Value)
				lines[k.Line] = p
				ft, ok := fields[k.Value]
				if !ok {
					issues = append(issues, &fielderr.Error{Line: k.Line, Col: k.Column, Path: p, Message: "unknown key" + suggest(k.Value, path, fields, all), LineOnly: true})
					continue
				}
				walk(v, ft, p, depth+1)
			}
		case reflect.Slice, reflect.Array:
			if n.Kind != yaml.SequenceNode {
				return
			}
			for i, e := range n.Content {
				walk(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), depth+1)
			}
		case reflect.Map:
			if n.Kind != yaml.MappingNode {
				return
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := join(path, n.Content[i].Value)
				lines[n.Content[i].Line] = p
				walk(n.Content[i+1], t.Elem(), p, depth+1)
			}
		}
	}
	walk(n, reflect.TypeOf(Config{}), "", 0)
	return issues, lines
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps a struct's yaml keys to their types (inline structs
// flattened).
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range yamlFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// knownPaths lists every key path of t ("policy.routes[].path").
func knownPaths(t reflect.Type, path string, depth int) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		if t.Kind() == reflect.Slice {
			path += "[]"
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t.PkgPath() == "time" || depth > 8 {
		return nil
	}
	var out []string
	for k, ft := range yamlFields(t) {
		p := join(path, k)
		out = append(out, p)
		out = append(out, knownPaths(ft, p, depth+1)...)
	}
	sort.Strings(out)
	return out
}

// suggest is "; did you mean ...?" for an unknown key: the closest key of
// its section, else the same key in another section, else the section's
// keys.
func suggest(key, parent string, fields map[string]reflect.Type, all []string) string {
	best, bestD := "", 1<<30
	for k := range fields {
		d := editDistance(strings.ToLower(key), k)
		if d < bestD || d == bestD && k < best {
			best, bestD = k, d
		}
	}
	if best != "" && bestD <= max(2, len(key)/3) {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	// The key belongs to another section: "routes" at the top level.
	var elsewhere []string
	for _, p := range all {
		if (p == key || strings.HasSuffix(p, "."+key)) && !strings.Contains(p, "[]") && p != join(parent, key) {
			elsewhere = append(elsewhere, p)
		}
	}
	if len(elsewhere) > 0 && len(elsewhere) <= 3 {
		return fmt.Sprintf("; did you mean %s?", strings.Join(elsewhere, " or "))
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		return ""
	}
	where := parent
	if where == "" {
		where = "the top level"
	}
	return fmt.Sprintf(" (keys of %s: %s)", where, strings.Join(keys, ", "))
}

// editDistance is the Damerau (optimal string alignment) distance of a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// goTypeWords says what a yaml type error's Go type wants, in the words of
// the file.
var goTypeWords = []struct{ from, to string }{
	{"into time.Duration", "(want a duration such as 10s or 500ms)"},
	{"into bool", "(want true or false)"},
	{"into *bool", "(want true or false)"},
	{"into int64", "(want a whole number)"},
	{"into int", "(want a whole number)"},
	{"into float64", "(want a number)"},
	{"into *float64", "(want a number)"},
	{"into string", "(want a string)"},
	{"into []string", "(want a list of strings)"},
}

// plainTypeError rewrites "cannot unmarshal !!str `soon` into
// time.Duration" without the Go type name.
func plainTypeError(msg string) string {
	for _, w := range goTypeWords {
		if strings.HasSuffix(msg, w.from) {
			return strings.TrimSuffix(msg, w.from) + w.to
		}
	}
	if i := strings.Index(msg, " into "); i > 0 && strings.HasPrefix(msg, "cannot unmarshal ") {
		into := msg[i+len(" into "):]
		switch {
		case strings.HasPrefix(into, "[]"):
			return msg[:i] + " (want a list)"
		case strings.HasPrefix(into, "map["):
			return msg[:i] + " (want a mapping)"
		default:
			return msg[:i] + " (want a mapping of keys)"
		}
	}
	return msg
}
