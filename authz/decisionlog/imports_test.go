package decisionlog

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsNothingOfAuthz: the decision log is below the pipeline (see
// doc.go): none of its files imports authz or a package under it.
func TestImportsNothingOfAuthz(t *testing.T) {
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range names {
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if path == "github.com/wardenauthz/warden/authz" || strings.HasPrefix(path, "github.com/wardenauthz/warden/authz/") {
				t.Errorf("%s imports %s", name, path)
			}
		}
	}
}
