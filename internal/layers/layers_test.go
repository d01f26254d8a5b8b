package layers

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/wardenauthz/warden/"

// rules: a package directory (and, with a trailing "/", everything under
// it) may not import these packages (nor anything under them).
var rules = []struct {
	dir       string
	forbidden []string
}{
	{"identity", []string{"authz", "policy", "ratelimit"}},
	{"policy", []string{"authz", "identity", "ratelimit"}},
	{"ratelimit", []string{"authz", "identity", "policy"}},
	{"internal/token", []string{"authz", "identity", "policy", "ratelimit", "internal"}},
	{"authz/decisionlog", []string{"authz/server", "authz/config", "authz/admin", "authz/console", "identity", "ratelimit"}},
	{"authz", []string{"authz/server", "authz/config", "authz/admin", "authz/authzen", "authz/httpauthz", "authz/review", "authz/console", "authz/policytest", "cmd"}},
}

// TestLayers: no non-test file imports what its package's rule forbids.
func TestLayers(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	checked := map[string]int{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "node_modules" || n == "testdata" || strings.HasPrefix(n, ".") && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		for _, r := range rules {
			if rel != r.dir {
				continue
			}
			checked[r.dir]++
			f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				p, ok := strings.CutPrefix(p, module)
				if !ok {
					continue
				}
				for _, no := range r.forbidden {
					if p == no || strings.HasPrefix(p, no+"/") {
						t.Errorf("%s imports %s: %s may not import %s (see doc.go)", path, p, r.dir, no)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if checked[r.dir] == 0 {
			t.Errorf("no Go files in %s: the rule checks nothing", r.dir)
		}
	}
}
