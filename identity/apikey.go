package identity

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/alexedwards/argon2id"
	"github.com/fsnotify/fsnotify"
	"go.yaml.in/yaml/v3"
)

// APIKeysConfig is identity.api_keys: where the accepted API keys are.
type APIKeysConfig struct {
	// File holds the keys' hashes (YAML, see ParseAPIKeys); it is read again
	// when it changes.
	File string `yaml:"file"`
	// Redis, instead of a file: the keys are the fields of a hash in the
	// store's Redis (store.kind: redis), read on every use (a deleted
	// field is a removed key at once). sha256 hashes only.
	Redis *APIKeysRedisConfig `yaml:"redis"`
	// MaxConcurrentHashes bounds argon2id comparisons under way at once
	// (each takes the hash's memory); default 4.
	MaxConcurrentHashes int `yaml:"max_concurrent_hashes"`
}

func (c *APIKeysConfig) setDefaults() {
	if c.MaxConcurrentHashes == 0 {
		c.MaxConcurrentHashes = 4
	}
}

// APIKeysRedisConfig names the Redis hash of API keys: field the key's
// id, value its entry as JSON ({"name", "hash", "created", "attributes",
// "parents"}, as in the file).
type APIKeysRedisConfig struct {
	Key string `yaml:"key"`
}

// APIKeyLookup reads the JSON entry of the key with id from a shared store;
// ok is false when there is none. Options.APIKeyLookup.
type APIKeyLookup func(ctx context.Context, id string) (entry []byte, ok bool, err error)

func (c *APIKeysConfig) validate(p string, bad func(string, string, ...any)) {
	if (c.File == "") == (c.Redis == nil) {
		bad(p, "set exactly one of file, redis")
	}
	if c.Redis != nil && c.Redis.Key == "" {
		bad(p+".redis.key", "is required")
	}
	if c.MaxConcurrentHashes < 1 || c.MaxConcurrentHashes > 256 {
		bad(p+".max_concurrent_hashes", "must be between 1 and 256, got %d", c.MaxConcurrentHashes)
	}
}

// An API key is "wk_" + 16 hex digits of id + "_" + 64 hex digits of secret
// (32 random bytes). The id finds the entry; only the whole key's hash is
// compared.
const (
	apiKeyPrefix    = "wk_"
	apiKeyIDLen     = 16
	apiKeySecretLen = 64
	maxAPIKeyFile   = 4 << 20
	maxAPIKeys      = 100000
)

// APIKeyInfo is the key an API-key caller presented, as its file names it.
type APIKeyInfo struct {
	Name       string
	Attributes map[string]string
	Parents    []string
	// Created is when the key was made: a revocation by name refuses keys
	// created before it (zero: every revocation by name refuses it).
	Created time.Time
}

// RevocationSubject is the subject an API key is revoked by: `ApiKey::"NAME"`
// (no token principal has this form: theirs always hold "ISSUER|").
func (k *APIKeyInfo) RevocationSubject() string { return `ApiKey::"` + k.Name + `"` }

// apiKeyEntry is one line of the key file.
type apiKeyEntry struct {
	info   *APIKeyInfo
	sha256 []byte // "sha256:" keys
	argon  string // "$argon2id$..." keys
	line   int
}

// apiKeySet is one reading of the key file.
type apiKeySet struct {
	byID     map[string]*apiKeyEntry
	hasArgon bool
	dummy    *apiKeyEntry // compared when the id is unknown
	// argonCost is the parameters every argon2id entry has (the first
	// one's, at argonLine).
	argonCost argonCost
	argonLine int
}

// argonCost is what an argon2id comparison's time depends on.
type argonCost struct {
	m, t   uint32
	p      uint8
	keyLen int
}

func (c argonCost) String() string {
	return fmt.Sprintf("m=%d,t=%d,p=%d,keylen=%d", c.m, c.t, c.p, c.keyLen)
}

type apiKeyLine struct {
	Name       string            `yaml:"name" json:"name"`
	ID         string            `yaml:"id" json:"id"`
	Hash       string            `yaml:"hash" json:"hash"`
	Created    string            `yaml:"created" json:"created"`
	Attributes map[string]string `yaml:"attributes" json:"attributes"`
	Parents    []string          `yaml:"parents" json:"parents"`
}

// ParseAPIKeys reads a key file:
//
//	keys:
//	  - name: partner-acme          # the principal ApiKey::"partner-acme"
//	    id: 3f9a0c1d2e4b5a69         # the key's id part
//	    hash: sha256:<64 hex>        # or an argon2id PHC string
//	    created: 2026-11-29T04:00:00Z
//	    attributes: {tier: gold}     # principal.tier in Cedar
//	    parents: [partners]          # Group::"partners"
//
// Errors name file:line.
func ParseAPIKeys(file string, b []byte) (*apiKeySet, error) {
	if len(b) > maxAPIKeyFile {
		return nil, fmt.Errorf("%s: over %d bytes", file, maxAPIKeyFile)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	set := &apiKeySet{byID: map[string]*apiKeyEntry{}, dummy: &apiKeyEntry{sha256: make([]byte, sha256.Size)}}
	if len(root.Content) == 0 {
		// Also what a reader sees of a file being rewritten in place.
		return nil, fmt.Errorf("%s: empty (write keys: [] for no keys)", file)
	}
	doc := root.Content[0]
	at := func(n *yaml.Node, format string, args ...any) error {
		return fmt.Errorf("%s:%d:%d: "+format, append([]any{file, n.Line, n.Column}, args...)...)
	}
	if doc.Kind != yaml.MappingNode {
		return nil, at(doc, "want a mapping with keys:")
	}
	var seq *yaml.Node
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value != "keys" {
			return nil, at(doc.Content[i], "unknown field %q (want keys)", doc.Content[i].Value)
		}
		seq = doc.Content[i+1]
	}
	if seq == nil {
		return set, nil
	}
	if seq.Kind != yaml.SequenceNode {
		return nil, at(seq, "keys: want a list")
	}
	if len(seq.Content) > maxAPIKeys {
		return nil, at(seq, "keys: over %d keys", maxAPIKeys)
	}
	known := map[string]bool{"name": true, "id": true, "hash": true, "created": true, "attributes": true, "parents": true}
	names := map[string]int{}
	for i, n := range seq.Content {
		p := fmt.Sprintf("keys[%d]", i)
		if n.Kind != yaml.MappingNode {
			return nil, at(n, "%s: want a mapping", p)
		}
		seen := map[string]bool{}
		for j := 0; j+1 < len(n.Content); j += 2 {
			k := n.Content[j]
			if !known[k.Value] {
				return nil, at(k, "%s: unknown field %q", p, k.Value)
			}
			if seen[k.Value] {
				return nil, at(k, "%s: %s given twice", p, k.Value)
			}
			seen[k.Value] = true
		}
		var l apiKeyLine
		if err := n.Decode(&l); err != nil {
			return nil, at(n, "%s: %v", p, err)
		}
		e, err := entryOf(l, n.Line)
		if err != nil {
			return nil, at(n, "%s: %v", p, err)
		}
		if prev, dup := names[l.Name]; dup {
			return nil, at(n, "%s.name: %q is also the name at line %d", p, l.Name, prev)
		}
		names[l.Name] = n.Line
		if prev, dup := set.byID[l.ID]; dup {
			return nil, at(n, "%s.id: %q is also the id at line %d", p, l.ID, prev.line)
		}
		set.byID[l.ID] = e
		if e.argon != "" {
			// One set of argon2id parameters per file: a lookup then costs
			// the same whether its id exists (its entry's parameters) or
			// not (the dummy's), so timing does not tell which ids exist.
			ap, _, key, _ := argon2id.DecodeHash(e.argon)
			cost := argonCost{ap.Memory, ap.Iterations, ap.Parallelism, len(key)}
			switch {
			case !set.hasArgon:
				set.hasArgon, set.argonCost, set.argonLine = true, cost, n.Line
				set.dummy = dummyArgon(e.argon)
			case cost != set.argonCost:
				return nil, at(n, "%s.hash: argon2id parameters %s differ from %s at line %d: every argon2id key of a file must have the same m, t, p and key length, or the time a lookup takes tells which key ids exist (rehash, or use sha256: for random keys)", p, cost, set.argonCost, set.argonLine)
			}
		}
	}
	return set, nil
}

func entryOf(l apiKeyLine, line int) (*apiKeyEntry, error) {
	if err := apiKeyNameError(l.Name); err != nil {
		return nil, fmt.Errorf("name: %v", err)
	}
	if len(l.ID) != apiKeyIDLen || !isLowerHex(l.ID) {
		return nil, fmt.Errorf("id: want %d lower-case hex digits", apiKeyIDLen)
	}
	e := &apiKeyEntry{line: line, info: &APIKeyInfo{Name: l.Name, Attributes: l.Attributes, Parents: l.Parents}}
	switch {
	case strings.HasPrefix(l.Hash, "sha256:"):
		h := strings.TrimPrefix(l.Hash, "sha256:")
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != sha256.Size {
			return nil, errors.New("hash: sha256: want 64 hex digits")
		}
		e.sha256 = b
	case strings.HasPrefix(l.Hash, "$argon2id$"):
		p, salt, key, err := argon2id.DecodeHash(l.Hash)
		if err != nil {
			return nil, fmt.Errorf("hash: %v", err)
		}
		// An empty hash would equal every key's (argon2id compares the
		// derived key at the stored key's length); t=0 panics in argon2.
		switch {
		case len(key) < 16 || len(salt) < 8:
			return nil, errors.New("hash: argon2id salt under 8 bytes or hash under 16 bytes")
		case p.Iterations < 1 || p.Parallelism < 1 || p.Memory < 8*uint32(p.Parallelism):
			return nil, errors.New("hash: argon2id parameters under t=1, p=1, m=8*p")
		case p.Memory > 1<<20 || p.Iterations > 16 || p.Parallelism > 16:
			return nil, errors.New("hash: argon2id parameters over m=1048576, t=16, p=16")
		}
		e.argon = l.Hash
	default:
		return nil, errors.New(`hash: want "sha256:<hex>" or an argon2id PHC string ("$argon2id$v=19$...")`)
	}
	if l.Created != "" {
		t, err := time.Parse(time.RFC3339, l.Created)
		if err != nil {
			return nil, fmt.Errorf("created: want RFC 3339, got %q", l.Created)
		}
		e.info.Created = t
	}
	for k, v := range l.Attributes {
		if k == "" || strings.ContainsFunc(k+v, unicode.IsControl) {
			return nil, fmt.Errorf("attributes: %q: empty name or control character", k)
		}
	}
	for _, g := range l.Parents {
		if err := apiKeyNameError(g); err != nil {
			return nil, fmt.Errorf("parents: %q: %v", g, err)
		}
	}
	return e, nil
}

// apiKeyNameError says why s can be no API key name or parent: names
// become Cedar entity ids, headers and revocation subjects.
func apiKeyNameError(s string) error {
	switch {
	case s == "":
		return errors.New("is required")
	case len(s) > 256:
		return errors.New("over 256 bytes")
	case strings.ContainsAny(s, `|"\`):
		return errors.New(`must not contain '|', '"' or '\'`)
	case strings.ContainsFunc(s, unicode.IsControl), strings.TrimFunc(s, unicode.IsSpace) != s:
		return errors.New("control character, or whitespace at either end")
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// dummyArgon is an argon2id hash with phc's parameters of a random
// password: comparing with it costs what comparing with a real key does.
func dummyArgon(phc string) *apiKeyEntry {
	p, _, _, _ := argon2id.DecodeHash(phc)
	var pw [32]byte
	_, _ = rand.Read(pw[:])
	h, err := argon2id.CreateHash(hex.EncodeToString(pw[:]), p)
	if err != nil {
		return &apiKeyEntry{argon: phc}
	}
	return &apiKeyEntry{argon: h}
}

// splitAPIKey splits a presented key into its id and the whole key; ok is
// false when it does not have the key format.
func splitAPIKey(key string) (id string, ok bool) {
	rest, ok := strings.CutPrefix(key, apiKeyPrefix)
	if !ok || len(rest) != apiKeyIDLen+1+apiKeySecretLen || rest[apiKeyIDLen] != '_' {
		return "", false
	}
	id, secret := rest[:apiKeyIDLen], rest[apiKeyIDLen+1:]
	if !isLowerHex(id) || !isLowerHex(secret) {
		return "", false
	}
	return id, true
}

// NewAPIKey makes a key for name and the file entry that accepts it
// (sha256: the key has 256 random bits, so a fast hash is safe).
func NewAPIKey(name string, now time.Time) (key, entry string, err error) {
	if err := apiKeyNameError(name); err != nil {
		return "", "", fmt.Errorf("name %q: %v", name, err)
	}
	var id [apiKeyIDLen / 2]byte
	var secret [apiKeySecretLen / 2]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", "", err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return "", "", err
	}
	key = apiKeyPrefix + hex.EncodeToString(id[:]) + "_" + hex.EncodeToString(secret[:])
	sum := sha256.Sum256([]byte(key))
	entry = fmt.Sprintf("  - name: %s\n    id: %s\n    hash: sha256:%s\n    created: %s\n",
		strconv.Quote(name), hex.EncodeToString(id[:]), hex.EncodeToString(sum[:]), now.UTC().Format(time.RFC3339))
	return key, entry, nil
}

// compareArgon is argon2id's constant-time comparison (a variable so a test
// can count the comparisons).
var compareArgon = argon2id.ComparePasswordAndHash

// ErrAPIKey is a presented API key that is not accepted.
var ErrAPIKey = errors.New("invalid API key")

// apiKeys verifies API keys against the current reading of the file.
type apiKeys struct {
	cfg    APIKeysConfig
	lookup APIKeyLookup // Redis; nil for a file
	set    atomic.Pointer[apiKeySet]
	slots  chan struct{} // bounds argon2id comparisons
	log    *slog.Logger
}

func newAPIKeys(cfg APIKeysConfig, lookup APIKeyLookup, log *slog.Logger) (*apiKeys, error) {
	k := &apiKeys{cfg: cfg, slots: make(chan struct{}, cfg.MaxConcurrentHashes), log: log}
	if cfg.Redis != nil {
		if lookup == nil {
			return nil, errors.New("identity.api_keys.redis: needs store.kind: redis")
		}
		k.lookup = lookup
		k.set.Store(&apiKeySet{byID: map[string]*apiKeyEntry{}, dummy: &apiKeyEntry{sha256: make([]byte, sha256.Size)}})
		return k, nil
	}
	if err := k.load(); err != nil {
		return nil, err
	}
	return k, nil
}

// load reads the file; on error the set in use stays.
func (k *apiKeys) load() error {
	b, err := readAtMost(k.cfg.File, maxAPIKeyFile+1) // ParseAPIKeys refuses more
	if err != nil {
		return fmt.Errorf("identity.api_keys.file: %w", err)
	}
	set, err := ParseAPIKeys(k.cfg.File, b)
	if err != nil {
		return err
	}
	k.set.Store(set)
	return nil
}

// readAtMost reads at most n bytes of the file at path: a file swapped for
// a huge one (or a device) costs no more than n.
func readAtMost(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

// watch reads the file again whenever it (or its directory entry: editors
// and Kubernetes replace files) changes, until ctx ends.
func (k *apiKeys) watch(ctx context.Context) {
	if k.lookup != nil {
		return
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		k.log.Error("api_keys: cannot watch the key file; changes need a restart", "file", k.cfg.File, "err", err)
		return
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(k.cfg.File)); err != nil {
		k.log.Error("api_keys: cannot watch the key file; changes need a restart", "file", k.cfg.File, "err", err)
		return
	}
	k.reload() // a change between the first reading and the watch
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if filepath.Clean(ev.Name) != filepath.Clean(k.cfg.File) && !strings.HasPrefix(filepath.Base(ev.Name), "..") {
				continue
			}
			k.reload()
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			k.log.Warn("api_keys: watch error", "err", err)
		}
	}
}

func (k *apiKeys) reload() {
	if err := k.load(); err != nil {
		k.log.Error("api_keys: key file not reloaded; serving the keys read before", "err", err)
		return
	}
	k.log.Info("api_keys: key file reloaded", "file", k.cfg.File, "keys", len(k.set.Load().byID))
}

// verify finds the key's entry. It takes as long for an unknown id as for
// a known one: the comparison runs against a dummy hash, and when the set
// has argon2id keys every lookup costs one argon2id comparison.
func (k *apiKeys) verify(ctx context.Context, key string) (*APIKeyInfo, error) {
	set := k.set.Load()
	id, ok := splitAPIKey(key)
	if !ok {
		return nil, fmt.Errorf("%w: not a Warden API key", ErrAPIKey)
	}
	e, known := set.byID[id]
	if k.lookup != nil {
		var err error
		if e, known, err = k.fetch(ctx, id); err != nil {
			return nil, err
		}
	}
	if !known {
		e = set.dummy
	}
	var match bool
	if e.sha256 != nil {
		sum := hashToken(key)
		match = subtle.ConstantTimeCompare(sum[:], e.sha256) == 1
	}
	if e.argon != "" || set.hasArgon {
		h := e.argon
		if h == "" {
			h = set.dummy.argon
		}
		select {
		case k.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, &unavailable{after: time.Second, kind: ErrAPIKeysUnavailable, cause: errors.New("too many key comparisons under way")}
		}
		m, err := compareArgon(key, h)
		<-k.slots
		if e.argon != "" {
			match = err == nil && m
		}
	}
	if !known || !match {
		return nil, ErrAPIKey
	}
	return e.info, nil
}

// apiKeyCredential extracts the key of an "ApiKey" authorization header,
// as bearer does a token: present for any attempt at the scheme.
func apiKeyCredential(h string) (key string, present bool) {
	_, key, present = credentials(h, "ApiKey")
	return key, present
}

// fetch reads the entry of id from the store. A malformed entry is logged
// and treated as no key (never as a match).
func (k *apiKeys) fetch(ctx context.Context, id string) (*apiKeyEntry, bool, error) {
	b, ok, err := k.lookup(ctx, id)
	if err != nil {
		return nil, false, &unavailable{after: time.Second, kind: ErrAPIKeysUnavailable, cause: err}
	}
	if !ok {
		return nil, false, nil
	}
	var l apiKeyLine
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var e *apiKeyEntry
	err = dec.Decode(&l)
	if err == nil && dec.More() {
		err = errors.New("data after the entry")
	}
	if err == nil {
		if l.ID == "" {
			l.ID = id
		}
		e, err = entryOf(l, 0)
	}
	if err == nil && (l.ID != id || e.sha256 == nil) {
		err = errors.New("id differs from the field, or the hash is not sha256: (argon2id keys belong in a file)")
	}
	if err != nil {
		k.log.Error("api_keys: malformed entry in Redis; refusing its key", "key", k.cfg.Redis.Key, "id", id, "err", err)
		return nil, false, nil
	}
	return e, true, nil
}
