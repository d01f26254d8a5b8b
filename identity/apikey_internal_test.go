package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/alexedwards/argon2id"
)

var cheapArgon = &argon2id.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// TestAPIKeyLookupHasNoEarlyReturn: an unknown id costs the same hash
// comparison a known one does (no timing oracle on which ids exist): with
// argon2id keys in the set, every lookup runs exactly one argon2id
// comparison — known id, unknown id, sha256 key alike.
func TestAPIKeyLookupHasNoEarlyReturn(t *testing.T) {
	var n atomic.Int64
	orig := compareArgon
	compareArgon = func(pw, h string) (bool, error) { n.Add(1); return orig(pw, h) }
	t.Cleanup(func() { compareArgon = orig })

	argonKey := "wk_" + "00000000000000a1" + "_" + fmt.Sprintf("%064x", 1)
	shaKey := "wk_" + "00000000000000b2" + "_" + fmt.Sprintf("%064x", 2)
	h, err := argon2id.CreateHash(argonKey, cheapArgon)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(shaKey))
	file := fmt.Sprintf("keys:\n  - {name: a, id: 00000000000000a1, hash: %q}\n  - {name: b, id: 00000000000000b2, hash: \"sha256:%s\"}\n", h, hex.EncodeToString(sum[:]))
	k := writeKeys(t, file)
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{argonKey, true},
		{shaKey, true},
		{"wk_00000000000000a1_" + fmt.Sprintf("%064x", 9), false}, // known id, wrong secret
		{"wk_00000000000000ff_" + fmt.Sprintf("%064x", 1), false}, // unknown id
	} {
		n.Store(0)
		_, err := k.verify(context.Background(), tc.key)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok %v", tc.key[:19], err, tc.ok)
		}
		if n.Load() != 1 {
			t.Errorf("%s: %d argon2id comparisons, want exactly 1", tc.key[:19], n.Load())
		}
	}
	// A sha256-only set compares an unknown id with a dummy sha256 hash
	// (and never argon2id).
	k = writeKeys(t, fmt.Sprintf("keys:\n  - {name: b, id: 00000000000000b2, hash: \"sha256:%s\"}\n", hex.EncodeToString(sum[:])))
	n.Store(0)
	if _, err := k.verify(context.Background(), "wk_00000000000000ff_"+fmt.Sprintf("%064x", 1)); err == nil {
		t.Fatal("unknown id accepted")
	}
	if k.set.Load().dummy.sha256 == nil || n.Load() != 0 {
		t.Errorf("sha256 set: dummy %v, argon2id comparisons %d", k.set.Load().dummy, n.Load())
	}
}

func writeKeys(t *testing.T, content string) *apiKeys {
	t.Helper()
	f := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := APIKeysConfig{File: f}
	cfg.setDefaults()
	k, err := newAPIKeys(cfg, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestAPIKeyFileReadBounded: a keys file over the limit is refused having
// read no more than the limit (and a byte).
func TestAPIKeyFileReadBounded(t *testing.T) {
	p := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(p, make([]byte, maxAPIKeyFile+4096), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := readAtMost(p, maxAPIKeyFile+1)
	if err != nil || len(b) != maxAPIKeyFile+1 {
		t.Fatalf("read %d bytes, %v; want %d", len(b), err, maxAPIKeyFile+1)
	}
	k := &apiKeys{cfg: APIKeysConfig{File: p}}
	if err := k.load(); err == nil || !strings.Contains(err.Error(), "over") {
		t.Fatalf("load = %v, want the size refusal", err)
	}
}
