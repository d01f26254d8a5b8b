package envoycheck

import (
	"os"
	"testing"
)

// FuzzCheck: any YAML gives problems or none, never a panic.
func FuzzCheck(f *testing.F) {
	b, err := os.ReadFile("../front-proxy/envoy.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("static_resources: {clusters: [{name: a}]}"))
	f.Add([]byte("filter_chains: [{filters: [{name: x, typed_config: {'@type': type.googleapis.com/google.protobuf.Any}}]}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = Check("fuzz.yaml", b)
	})
}
