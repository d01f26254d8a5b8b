package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenauthz/warden/authz/config"
)

// TestConsoleConfig: admin.console is off by default, and is refused on a
// non-loopback admin address without TLS and without the admin API's
// authentication, each error naming its key path and line.
func TestConsoleConfig(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tok, []byte("0123456789abcdef0123 *\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("warden.yaml", []byte("identity: {anonymous: true}\nadmin: {token_file: "+tok+"}\n"), dir)
	if err != nil || c.Admin.Console {
		t.Fatalf("console must be off by default: %v %v", c.Admin.Console, err)
	}
	c, err = config.Parse("warden.yaml", []byte("identity: {anonymous: true}\nadmin: {token_file: "+tok+", console: true}\n"), dir)
	if err != nil || !c.Admin.Console {
		t.Fatalf("console on loopback: %v %v", c.Admin.Console, err)
	}
	for _, tc := range []struct{ src, want string }{
		{"identity: {anonymous: true}\nadmin:\n  addr: 0.0.0.0:9193\n  token_file: " + tok + "\n  console: true\n",
			`warden.yaml:5: admin.console: admin.addr "0.0.0.0:9193" is not a loopback address: the console needs admin.tls there`},
		{"identity: {anonymous: true}\nadmin:\n  addr: '[::]:9193'\n  console: true\n",
			`admin.console: admin.addr "[::]:9193" is not a loopback address`},
		{"identity: {anonymous: true}\nadmin:\n  console: yes please\n",
			"admin.console: cannot unmarshal"},
	} {
		_, err := config.Parse("warden.yaml", []byte(tc.src), dir)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: want %q in %v", tc.src, tc.want, err)
		}
	}
	// Without the admin API the console is not served: a warning, so a
	// config that turns the admin API off still starts.
	for _, src := range []string{
		"identity: {anonymous: true}\nadmin:\n  console: true\n",
		"identity: {anonymous: true}\nadmin:\n  addr: \"off\"\n  token_file: " + tok + "\n  console: true\n",
	} {
		c, err := config.Parse("warden.yaml", []byte(src), dir)
		if err != nil || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "admin.console: not served: the admin API is off") {
			t.Errorf("%q: %v %q", src, err, c.Warnings)
		}
	}
}
