package fielderr_test

import (
	"errors"
	"fmt"

	"github.com/wardenauthz/warden/internal/fielderr"
)

// A section's Validate returns key paths relative to itself; the config
// puts them under the section, then places them in its file.
func ExampleWithin() {
	validate := func() error {
		return fielderr.List{fielderr.Errorf("routes[0].path", "%q must start with /", "orders")}.Err()
	}
	list := fielderr.Within("policy", validate())
	for _, e := range list {
		e.File, e.Line, e.Col, e.LineOnly = "warden.yaml", 13, 21, true
	}
	var err error = list
	fmt.Println(err)
	var got fielderr.List
	if errors.As(err, &got) {
		fmt.Println(got[0].Path, got[0].Line, got[0].Col)
	}
	// Output:
	// warden.yaml:13: policy.routes[0].path: "orders" must start with /
	// policy.routes[0].path 13 21
}
