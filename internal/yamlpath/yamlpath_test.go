package yamlpath

import (
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestFind: the key (or list element) of the deepest part of the path
// present, at its line and column.
func TestFind(t *testing.T) {
	const doc = `server:
  grpc_addr: x
policy:
  routes:
    - {method: GET, path: /a}
    -   method: POST
        path: /b
`
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path      string
		line, col int
	}{
		{"server", 1, 1},
		{"server.grpc_addr", 2, 3},
		{"server.grpc_addr.deeper", 2, 3},
		{"server.missing", 1, 1},
		{"policy.routes", 4, 3},
		{"policy.routes[0]", 5, 7},
		{"policy.routes[0].path", 5, 21},
		{"policy.routes[1].path", 7, 9},
		{"policy.routes[9].path", 4, 3},
		{"nothing", 1, 1},
	} {
		if l, c := Find(&root, tc.path); l != tc.line || c != tc.col {
			t.Errorf("Find(%q) = %d:%d, want %d:%d", tc.path, l, c, tc.line, tc.col)
		}
	}
	var scalar yaml.Node
	if err := yaml.Unmarshal([]byte("just text"), &scalar); err != nil {
		t.Fatal(err)
	}
	if l, c := Find(&scalar, "a"); l != 0 || c != 0 {
		t.Errorf("Find in a scalar document = %d:%d, want 0:0", l, c)
	}
}
