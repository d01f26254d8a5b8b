package envoy_test

import (
	"testing"

	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/wardenauthz/warden/envoy/envoycheck"
)

type matcherPattern = matcherv3.StringMatcher

// httpExtAuthz is the ext_authz filter of file's first HTTP listener.
func httpExtAuthz(t *testing.T, file string) *extauthzv3.ExtAuthz {
	t.Helper()
	bs, err := envoycheck.LoadBootstrap(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range bs.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				var hcm hcmv3.HttpConnectionManager
				if f.GetTypedConfig().UnmarshalTo(&hcm) != nil {
					continue
				}
				for _, hf := range hcm.GetHttpFilters() {
					var az extauthzv3.ExtAuthz
					if hf.GetTypedConfig().UnmarshalTo(&az) == nil {
						return &az
					}
				}
			}
		}
	}
	t.Fatalf("%s: no ext_authz filter", file)
	return nil
}
