// Package config loads warden.yaml: strict YAML (unknown keys, wrong types
// and invalid values are all reported at once, each with file and line),
// defaults, and validation of every section through its package's Validate.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wardenauthz/warden/authz"
	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/examples/quickstart"
	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/internal/fielderr"
	"github.com/wardenauthz/warden/internal/yamlpath"
	"github.com/wardenauthz/warden/policy"
	"github.com/wardenauthz/warden/ratelimit"
)

// Config is warden.yaml.
type Config struct {
	Server      Server                     `yaml:"server"`
	Identity    identity.Config            `yaml:"identity"`
	Policy      policy.Config              `yaml:"policy"`
	RateLimit   ratelimit.Config           `yaml:"ratelimit"`
	Revocation  ratelimit.RevocationConfig `yaml:"revocation"`
	Store       Store                      `yaml:"store"`
	Response    Response                   `yaml:"response"`
	DecisionLog DecisionLog                `yaml:"decision_log"`
	Tracing     Tracing                    `yaml:"tracing"`
	Admin       Admin                      `yaml:"admin"`
	AuthZEN     AuthZEN                    `yaml:"authzen"`

	// File is where the config was read from ("embedded:quickstart/warden.yaml"
	// for the embedded default).
	File string `yaml:"-"`
	// Warnings are doubtful settings that are not errors ("file:line: key:
	// message"): warden config validate prints them, serve logs them.
	Warnings []string `yaml:"-"`
	// Embedded is set for the built-in quick start.
	Embedded bool `yaml:"-"`
	// fsys and base resolve relative paths (the policy directory).
	fsys fs.FS
	base string
}

// Server is the listeners section.
type Server struct {
	GRPCAddr      string        `yaml:"grpc_addr"`
	HTTPAddr      string        `yaml:"http_addr"`
	TLS           TLS           `yaml:"tls"`
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// MaxRecvBytes bounds a CheckRequest (bodies included) at the gRPC
	// layer; past it Envoy sees a failure, not a denial, so Limits must
	// deny first.
	MaxRecvBytes int `yaml:"max_recv_bytes"`
	// Limits bound what a request may carry; over one it is denied (431 or
	// 413) before its credentials are read.
	Limits authz.Limits `yaml:"limits"`
	// Node names this replica in decision records (default: the hostname).
	Node string `yaml:"node"`
	// AuthZENAddr serves the AuthZEN evaluation API (see AuthZEN); "" is off.
	AuthZENAddr string `yaml:"authzen_addr"`
	// GRPC bounds what callers of the ext_authz listener can hold open.
	GRPC GRPC `yaml:"grpc"`
	// HTTPAuthzAddr is the HTTP authorization listener (HTTP/1.1 and h2c)
	// for Envoy's HTTP ext_authz and forward-auth proxies; "" is off.
	HTTPAuthzAddr string    `yaml:"http_authz_addr"`
	HTTPAuthz     HTTPAuthz `yaml:"http_authz"`
}

// GRPC is server.grpc: connection and stream limits of the ext_authz gRPC
// listener, so that streams or connections a caller holds open cannot pile
// up (every default is set by setDefaults).
type GRPC struct {
	// MaxConcurrentStreams is HTTP/2's SETTINGS_MAX_CONCURRENT_STREAMS: the
	// streams one connection may have open; past it a new one is refused.
	MaxConcurrentStreams int `yaml:"max_concurrent_streams"`
	// MaxStreams bounds the streams open over all connections; past it a
	// new stream fails with UNAVAILABLE (a deny at Envoy).
	MaxStreams int `yaml:"max_streams"`
	// MaxConnections bounds open connections; past it new ones wait in the
	// kernel's accept queue.
	MaxConnections int `yaml:"max_connections"`
	// MaxBufferedBytes bounds the request bytes the streams open over all
	// connections may hold buffered: each stream is counted at
	// max(64 KiB, server.max_recv_bytes) (what HTTP/2 flow control lets
	// its client send before the message is complete), so at most
	// max_buffered_bytes / that many streams are open (and max_streams),
	// besides each connection's reserve.
	MaxBufferedBytes int64 `yaml:"max_buffered_bytes"`
	// ConnectionReserve is how many streams a connection may open past
	// max_streams and max_buffered_bytes, so that a flood on other
	// connections cannot starve one that keeps few streams open (Envoy's).
	ConnectionReserve int `yaml:"connection_reserve"`
	// StreamTimeout bounds every stream (a Check, a health Watch, a
	// reflection stream) when the client sets no shorter grpc-timeout.
	StreamTimeout time.Duration `yaml:"stream_timeout"`
	// ConnectionTimeout bounds a new connection's TLS handshake and
	// HTTP/2 preface.
	ConnectionTimeout time.Duration `yaml:"connection_timeout"`
	// KeepaliveMinTime is the shortest interval between a client's pings
	// (keepalive enforcement; a client that pings more often is sent
	// GOAWAY), and KeepalivePermitWithoutStream whether pings are allowed
	// on a connection with no stream.
	KeepaliveMinTime             time.Duration `yaml:"keepalive_min_time"`
	KeepalivePermitWithoutStream *bool         `yaml:"keepalive_permit_without_stream"`
	// KeepaliveTime is how long a connection is quiet before the server
	// pings it, and KeepaliveTimeout how long it waits for the answer.
	KeepaliveTime    time.Duration `yaml:"keepalive_time"`
	KeepaliveTimeout time.Duration `yaml:"keepalive_timeout"`
	// MaxConnectionIdle closes a connection with no stream for this long;
	// MaxConnectionAge closes any connection this old (GOAWAY, then
	// MaxConnectionAgeGrace for its streams to finish).
	MaxConnectionIdle     time.Duration `yaml:"max_connection_idle"`
	MaxConnectionAge      time.Duration `yaml:"max_connection_age"`
	MaxConnectionAgeGrace time.Duration `yaml:"max_connection_age_grace"`
}

// TLS configures the gRPC listener's certificate (and client CA for mTLS).
type TLS struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
}

// Admin configures the admin API (warden.admin.v1) and who may call what.
// It is served only when it can authenticate its callers: a token file,
// mTLS clients, or (quick start only) the dev token.
type Admin struct {
	// Addr is the admin gRPC listener; "off" turns the admin API off.
	Addr string `yaml:"addr"`
	// TokenFile holds bearer tokens, one per line: "TOKEN METHOD[,METHOD...]"
	// (METHOD: QueryDecisions, Revoke, ListRevocations, PolicyStatus or *).
	// It is read again on every call, so tokens rotate without a restart.
	TokenFile string `yaml:"token_file"`
	// TLS serves the admin API over TLS; with client_ca_file, client
	// certificates are required and Clients says what each may call.
	TLS     TLS           `yaml:"tls"`
	Clients []AdminClient `yaml:"clients"`
	// DevToken creates a token allowed everything at
	// $XDG_STATE_HOME/warden/admin-token (0600) on first use, for the quick
	// start; loopback only.
	DevToken bool `yaml:"dev_token"`
	// Console serves the web console (authz/console) on the admin
	// listener, under the admin API's authentication and grants. A
	// non-loopback admin.addr needs admin.tls for it.
	Console bool `yaml:"console"`
}

// AdminClient grants an mTLS client certificate admin methods.
type AdminClient struct {
	// ID is the certificate's URI SAN (e.g. a SPIFFE ID), else its subject CN.
	ID    string   `yaml:"id"`
	Allow []string `yaml:"allow"`
}

// AdminMethods are the admin API's methods, the names admin grants use.
var AdminMethods = []string{"QueryDecisions", "Revoke", "ListRevocations", "PolicyStatus"}

// Enabled reports whether the admin API is served.
func (a Admin) Enabled() bool {
	return a.Addr != "off" && (a.TokenFile != "" || a.TLS.ClientCAFile != "" || a.DevToken)
}

// ValidAdminGrant reports whether g names an admin method or is "*".
func ValidAdminGrant(g string) bool {
	return g == "*" || slices.Contains(AdminMethods, g) || slices.Contains(AuthZENMethods, g)
}

// validate checks a listener's TLS section, named key in errors.
func (t TLS) validate(key string) fielderr.List {
	var errs fielderr.List
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, fielderr.Errorf(key, "cert_file and key_file go together"))
	}
	if t.ClientCAFile != "" && t.CertFile == "" {
		errs = append(errs, fielderr.Errorf(key+".client_ca_file", "needs cert_file and key_file"))
	}
	return errs
}

// Store selects the shared-state store.
type Store struct {
	Kind   string      `yaml:"kind"`
	Redis  Redis       `yaml:"redis"`
	Memory MemoryStore `yaml:"memory"`
}

// MemoryStore is store.memory: the in-memory rate-limit buckets (of the
// memory store, and of the local limiter that stands in for Redis with
// ratelimit.fail_open).
type MemoryStore struct {
	// MaxKeys bounds the buckets kept; past it the least recently used is
	// evicted (its key starts a fresh window if it comes back).
	MaxKeys int `yaml:"max_keys"`
}

// Redis is the Redis store's connection (secrets from env or file only).
type Redis struct {
	Addrs        []string `yaml:"addrs"`
	MasterName   string   `yaml:"master_name"`
	Username     string   `yaml:"username"`
	PasswordEnv  string   `yaml:"password_env"`
	PasswordFile string   `yaml:"password_file"`
	DB           int      `yaml:"db"`
	TLS          RedisTLS `yaml:"tls"`
	// Timeout bounds every Redis call made for a Check.
	Timeout time.Duration `yaml:"timeout"`
}

// RedisTLS is store.redis.tls: TLS to Redis. The server's certificate is
// checked against ca_file (else the system roots) and server_name (else the
// address's host); cert_file and key_file are the client certificate Redis
// asks for with tls-auth-clients.
type RedisTLS struct {
	Enabled    bool   `yaml:"enabled"` // implied by any file below
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// On reports whether TLS to Redis is configured.
func (t RedisTLS) On() bool { return t.Enabled || t.CAFile != "" || t.CertFile != "" }

// Response configures what Warden sends to Envoy.
type Response struct {
	ForwardAuthorization *bool  `yaml:"forward_authorization"`
	HeadersPrefix        string `yaml:"headers_prefix"`
}

// Tracing configures OpenTelemetry export (off when no endpoint is set).
type Tracing struct {
	OTLPEndpoint string   `yaml:"otlp_endpoint"` // host:port of an OTLP/gRPC collector
	Insecure     bool     `yaml:"insecure"`      // plaintext to the collector
	SampleRatio  *float64 `yaml:"sample_ratio"`  // for traces not already sampled upstream
}

// DecisionLog configures the decision log.
type DecisionLog struct {
	Sinks       []Sink   `yaml:"sinks"`
	SampleAllow *float64 `yaml:"sample_allow"`
	BufferSize  int      `yaml:"buffer_size"`
	// Replayable keeps each decision's Cedar request (principal with its
	// parents, action, resource, the whole context) in its record, for
	// warden replay and warden access-review.
	Replayable bool `yaml:"replayable"`
	// MaxFieldBytes, MaxRecordBytes and BufferBytes bound each string of
	// a record, each record and the asynchronous buffer (decisionlog.RecordLimits).
	MaxFieldBytes  int `yaml:"max_field_bytes"`
	MaxRecordBytes int `yaml:"max_record_bytes"`
	BufferBytes    int `yaml:"buffer_bytes"`
	// MemoryRecords and MemoryBytes bound the in-memory records the admin
	// API answers from when no sink is queryable.
	MemoryRecords int `yaml:"memory_records"`
	MemoryBytes   int `yaml:"memory_bytes"`
}

// RecordLimits are the decision log's bounds.
func (d DecisionLog) RecordLimits() decisionlog.RecordLimits {
	return decisionlog.RecordLimits{MaxFieldBytes: d.MaxFieldBytes, MaxRecordBytes: d.MaxRecordBytes, BufferBytes: d.BufferBytes}
}

// Sink is one decision log destination.
type Sink struct {
	Kind       string `yaml:"kind"`
	Path       string `yaml:"path"`
	MaxSizeMB  int    `yaml:"max_size_mb"`
	MaxBackups int    `yaml:"max_backups"`
	Stream     string `yaml:"stream"`
	MaxLen     int64  `yaml:"max_len"`
}

// Load reads, defaults and validates a config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	return parse(path, b, os.DirFS(dir), dir)
}

// EmbeddedName is how the embedded quick start config is named.
const EmbeddedName = "embedded:examples/quickstart/warden.yaml"

// LoadEmbedded returns the built-in quick start config.
func LoadEmbedded() (*Config, error) {
	b, err := fs.ReadFile(quickstart.FS, "warden.yaml")
	if err != nil {
		return nil, err
	}
	c, err := parse(EmbeddedName, b, quickstart.FS, "embedded:examples/quickstart")
	if err != nil {
		return nil, err
	}
	c.Embedded = true
	return c, nil
}

// Parse decodes config text; name is used in errors, and relative paths are
// resolved against dir on disk.
func Parse(name string, b []byte, dir string) (*Config, error) {
	return parse(name, b, os.DirFS(dir), dir)
}

func parse(name string, b []byte, fsys fs.FS, base string) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, FileError(name, err)
	}
	c := &Config{File: name, fsys: fsys, base: base}
	var errs fielderr.List
	if len(bytes.TrimSpace(b)) > 0 {
		issues, lines := walkKeys(&root)
		reported := map[int]bool{}
		for _, k := range issues {
			k.File = name
			errs = append(errs, k)
			reported[k.Line] = true
		}
		// Unknown keys are reported above (with their key path and a
		// suggestion); yaml's own type errors get the key path of their
		// line. KnownFields stays on: an unknown key the walk missed is
		// still an error.
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil {
			errs = append(errs, decodeErrors(name, err, &root, lines, reported)...)
		}
	}
	c.setDefaults()
	for _, e := range c.validate() {
		errs = append(errs, locate(name, &root, e))
	}
	if len(errs) > 0 {
		errs.SortByLine()
		return nil, errs
	}
	for _, w := range fielderr.Within("identity", c.Identity.Warnings()) {
		c.Warnings = append(c.Warnings, locate(name, &root, w).Error())
	}
	if c.Admin.Console && !c.Admin.Enabled() {
		c.Warnings = append(c.Warnings, locate(name, &root, fielderr.Errorf("admin.console", "not served: the admin API is off (admin.addr off, or no admin.token_file, admin.tls.client_ca_file or admin.dev_token), and the console authenticates as it does")).Error())
	}
	return c, nil
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// FileError rewrites yaml.v3's "line N: msg" errors (all of them, for a
// TypeError) as field errors of file name at line N (a fielderr.List).
func FileError(name string, err error) error {
	return decodeErrors(name, err, nil, nil, nil).Err()
}

// decodeErrors rewrites yaml.v3's "line N: msg" errors (all of them, for
// a TypeError), the only form yaml.v3 gives them in, as field errors of
// file name at line N, with the key path lines has for line N (and its
// column in root); an unknown-key error on a line in reported is left out
// (walkKeys said it better). FileError is decodeErrors without them.
func decodeErrors(name string, err error, root *yaml.Node, lines map[int]string, reported map[int]bool) fielderr.List {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var out fielderr.List
	for _, m := range msgs {
		if g := lineRE.FindStringSubmatch(m); g != nil {
			n, _ := strconv.Atoi(g[1])
			msg := plainTypeError(g[2])
			if f, ok := strings.CutPrefix(g[2], "field "); ok {
				k, _, unknown := strings.Cut(f, " not found in type ")
				if unknown && reported[n] {
					continue // walkKeys said it better
				}
				if unknown {
					msg = fmt.Sprintf("unknown key %q", k)
				}
			}
			e := &fielderr.Error{File: name, Line: n, Path: lines[n], Message: msg, LineOnly: true}
			if e.Path != "" {
				if l, c := yamlpath.Find(root, e.Path); l == n {
					e.Col = c
				}
			}
			out = append(out, e)
			continue
		}
		out = append(out, &fielderr.Error{File: name, Message: strings.TrimPrefix(m, "yaml: ")})
	}
	return out
}

// locate places a validation error of key path e.Path in file name: at
// the deepest node of that path present in root.
func locate(name string, root *yaml.Node, e *fielderr.Error) *fielderr.Error {
	l := *e
	l.File, l.LineOnly = name, true
	if l.Path != "" {
		l.Line, l.Col = yamlpath.Find(root, l.Path)
	}
	return &l
}

func (c *Config) setDefaults() {
	if c.Server.GRPCAddr == "" {
		c.Server.GRPCAddr = "127.0.0.1:9191"
	}
	if c.Server.HTTPAddr == "" {
		c.Server.HTTPAddr = "127.0.0.1:9192"
	}
	if c.Server.ShutdownGrace == 0 {
		c.Server.ShutdownGrace = 10 * time.Second
	}
	if c.Admin.Addr == "" {
		c.Admin.Addr = "127.0.0.1:9193"
	}
	if c.Server.MaxRecvBytes == 0 {
		c.Server.MaxRecvBytes = 4 << 20
	}
	// Envoy's own defaults are 100 headers and 60 KiB; it adds a few of
	// its own (x-forwarded-*, x-request-id, pseudo-headers) before ext_authz.
	if c.Server.Limits.MaxHeaders == 0 {
		c.Server.Limits.MaxHeaders = 128
	}
	if c.Server.Limits.MaxHeaderBytes == 0 {
		c.Server.Limits.MaxHeaderBytes = 96 << 10
	}
	if c.Server.Limits.MaxBodyBytes == 0 {
		c.Server.Limits.MaxBodyBytes = 1 << 20
	}
	c.setAuthZENDefaults()
	c.Server.GRPC.setDefaults()
	c.Server.HTTPAuthz.setDefaults()
	c.Identity.SetDefaults()
	c.Identity.ResolvePaths(c.Resolve)
	c.Policy.SetDefaults()
	c.RateLimit.SetDefaults()
	c.Revocation.SetDefaults()
	if c.Store.Kind == "" {
		c.Store.Kind = "memory"
	}
	if c.Store.Memory.MaxKeys == 0 {
		c.Store.Memory.MaxKeys = ratelimit.MemoryKeys
	}
	if c.Store.Redis.Timeout == 0 {
		c.Store.Redis.Timeout = 100 * time.Millisecond
	}
	if c.Response.ForwardAuthorization == nil {
		t := true
		c.Response.ForwardAuthorization = &t
	}
	if c.Response.HeadersPrefix == "" {
		c.Response.HeadersPrefix = "x-warden-"
	}
	if c.DecisionLog.Sinks == nil {
		c.DecisionLog.Sinks = []Sink{{Kind: "stdout"}}
	}
	if c.DecisionLog.SampleAllow == nil {
		one := 1.0
		c.DecisionLog.SampleAllow = &one
	}
	if c.Tracing.SampleRatio == nil {
		one := 1.0
		c.Tracing.SampleRatio = &one
	}
	if c.DecisionLog.BufferSize == 0 {
		c.DecisionLog.BufferSize = 8192
	}
	dl, def := &c.DecisionLog, decisionlog.DefaultRecordLimits
	for _, d := range []struct {
		p *int
		v int
	}{
		{&dl.MaxFieldBytes, def.MaxFieldBytes}, {&dl.MaxRecordBytes, def.MaxRecordBytes}, {&dl.BufferBytes, def.BufferBytes},
		{&dl.MemoryRecords, 10000}, {&dl.MemoryBytes, 32 << 20},
	} {
		if *d.p == 0 {
			*d.p = d.v
		}
	}
	for i := range c.DecisionLog.Sinks {
		s := &c.DecisionLog.Sinks[i]
		if s.Kind == "file" && s.MaxSizeMB == 0 {
			s.MaxSizeMB = 100
		}
		if s.Kind == "file" && s.MaxBackups == 0 {
			s.MaxBackups = 3
		}
		if s.Kind == "redis_stream" && s.MaxLen == 0 {
			s.MaxLen = 1_000_000
		}
	}
}

func (g *GRPC) setDefaults() {
	set := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	// Envoy multiplexes its Checks over a few connections per worker and
	// opens another past a connection's stream limit.
	set(&g.MaxConcurrentStreams, 256)
	set(&g.MaxStreams, 4096)
	set(&g.MaxConnections, 1024)
	if g.MaxBufferedBytes == 0 {
		g.MaxBufferedBytes = 256 << 20
	}
	set(&g.ConnectionReserve, 8)
	setD(&g.StreamTimeout, 5*time.Second)
	setD(&g.ConnectionTimeout, 5*time.Second)
	setD(&g.KeepaliveMinTime, 5*time.Second)
	if g.KeepalivePermitWithoutStream == nil {
		t := true
		g.KeepalivePermitWithoutStream = &t
	}
	setD(&g.KeepaliveTime, 30*time.Second)
	setD(&g.KeepaliveTimeout, 10*time.Second)
	setD(&g.MaxConnectionIdle, 5*time.Minute)
	setD(&g.MaxConnectionAge, 30*time.Minute)
	setD(&g.MaxConnectionAgeGrace, 10*time.Second)
}

// StreamBytes is what one stream's client may have buffered before its
// message is complete: HTTP/2's initial stream window (64 KiB, static), or
// the largest message with its 5-byte gRPC prefix (once grpc-go reads the
// prefix it opens the window to the declared length).
func StreamBytes(maxRecv int) int64 {
	return int64(max(StreamWindow, maxRecv+5))
}

// StreamWindow is the listeners' HTTP/2 initial stream window (grpc-go
// ignores smaller values).
const StreamWindow = 65535

// SharedStreams is how many streams may be open over all connections
// before only the connection reserves are left: max_streams, and no more
// than max_buffered_bytes of StreamBytes(maxRecv).
func (g GRPC) SharedStreams(maxRecv int) int {
	return int(min(int64(g.MaxStreams), g.MaxBufferedBytes/StreamBytes(maxRecv)))
}

// MaxIncompleteBytes is the most the listener's incomplete requests can
// hold buffered: (SharedStreams + connection_reserve × max_connections) ×
// StreamBytes(maxRecv).
func (g GRPC) MaxIncompleteBytes(maxRecv int) int64 {
	return int64(g.SharedStreams(maxRecv)+g.ConnectionReserve*g.MaxConnections) * StreamBytes(maxRecv)
}

func (g *GRPC) validate() fielderr.List {
	var errs fielderr.List
	bad := func(key, format string, args ...any) {
		errs = append(errs, fielderr.Errorf("server.grpc."+key, format, args...))
	}
	for _, v := range []struct {
		key       string
		v, lo, hi int
	}{
		{"max_concurrent_streams", g.MaxConcurrentStreams, 1, 1 << 16},
		{"max_streams", g.MaxStreams, 1, 1 << 20},
		{"max_connections", g.MaxConnections, 1, 1 << 20},
		{"connection_reserve", g.ConnectionReserve, 1, 256},
	} {
		if v.v < v.lo || v.v > v.hi {
			bad(v.key, "must be between %d and %d", v.lo, v.hi)
		}
	}
	if g.MaxBufferedBytes < 1<<20 || g.MaxBufferedBytes > 1<<40 {
		bad("max_buffered_bytes", "must be between 1048576 and 1099511627776")
	}
	if g.MaxStreams < g.MaxConcurrentStreams {
		bad("max_streams", "(%d) must be at least max_concurrent_streams (%d)", g.MaxStreams, g.MaxConcurrentStreams)
	}
	for _, v := range []struct {
		key    string
		v, min time.Duration
	}{
		{"stream_timeout", g.StreamTimeout, 100 * time.Millisecond},
		{"connection_timeout", g.ConnectionTimeout, 100 * time.Millisecond},
		{"keepalive_min_time", g.KeepaliveMinTime, time.Second},
		{"keepalive_time", g.KeepaliveTime, time.Second},
		{"keepalive_timeout", g.KeepaliveTimeout, time.Second},
		{"max_connection_idle", g.MaxConnectionIdle, time.Second},
		{"max_connection_age", g.MaxConnectionAge, time.Second},
		{"max_connection_age_grace", g.MaxConnectionAgeGrace, 0},
	} {
		if v.v < v.min {
			bad(v.key, "must be at least %s", v.min)
		}
	}
	return errs
}

func (c *Config) validate() fielderr.List {
	var errs fielderr.List
	bad := func(path, format string, args ...any) {
		errs = append(errs, fielderr.Errorf(path, format, args...))
	}
	for _, l := range []struct{ key, addr string }{{"server.grpc_addr", c.Server.GRPCAddr}, {"server.http_addr", c.Server.HTTPAddr}} {
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			bad(l.key, "%q is not host:port", l.addr)
		}
	}
	errs = append(errs, c.Server.TLS.validate("server.tls")...)
	errs = append(errs, c.validateAuthZEN()...)
	errs = append(errs, c.Server.GRPC.validate()...)
	if c.Server.ShutdownGrace < 0 {
		bad("server.shutdown_grace", "must not be negative")
	}
	if c.Server.MaxRecvBytes < 64<<10 || c.Server.MaxRecvBytes > 64<<20 {
		bad("server.max_recv_bytes", "must be between 65536 and 67108864")
	}
	if l := c.Server.Limits; l.MaxHeaders < 0 || l.MaxHeaderBytes < 0 || l.MaxBodyBytes < 0 {
		bad("server.limits", "limits must not be negative")
	} else if l.MaxHeaderBytes+l.MaxBodyBytes > c.Server.MaxRecvBytes-(16<<10) {
		bad("server.limits", "max_header_bytes + max_body_bytes (%d) must leave 16 KiB under server.max_recv_bytes (%d), so that a request over a limit gets a clear denial rather than a gRPC error",
			l.MaxHeaderBytes+l.MaxBodyBytes, c.Server.MaxRecvBytes)
	}
	errs = append(errs, fielderr.Within("identity", c.Identity.Validate())...)
	if k := c.Identity.APIKeys; k != nil && k.Redis != nil && c.Store.Kind != "redis" {
		bad("identity.api_keys.redis", "needs store.kind: redis (the keys are read from its Redis)")
	}
	if c.Identity.DevIssuer.Enabled && !Loopback(c.Server.GRPCAddr) {
		bad("identity.dev_issuer.enabled", "the dev issuer is for local use only: server.grpc_addr %q is not a loopback address", c.Server.GRPCAddr)
	}
	if len(c.Identity.Issuers) == 0 && !c.Identity.DevIssuer.Enabled && !*c.Identity.Anonymous && len(c.Identity.Workloads.TrustDomains) == 0 {
		bad("identity", "no issuer, no dev issuer, no workloads and no anonymous access: nothing can ever be allowed")
	}
	errs = append(errs, fielderr.Within("policy", c.Policy.Validate())...)
	if c.Policy.Reload == "watch" && c.Embedded {
		c.Policy.Reload = "off"
	}
	errs = append(errs, fielderr.Within("ratelimit", c.RateLimit.Validate())...)
	errs = append(errs, fielderr.Within("revocation", c.Revocation.Validate())...)
	if k := c.Store.Memory.MaxKeys; k < 1024 || k > 1<<26 {
		bad("store.memory.max_keys", "must be between 1024 and 67108864")
	}
	switch c.Store.Kind {
	case "memory":
	case "redis":
		r := c.Store.Redis
		if len(r.Addrs) == 0 {
			bad("store.redis.addrs", "is required for store.kind redis")
		}
		if r.PasswordEnv != "" && r.PasswordFile != "" {
			bad("store.redis", "password_env and password_file are exclusive")
		}
		if (r.TLS.CertFile == "") != (r.TLS.KeyFile == "") {
			bad("store.redis.tls", "cert_file and key_file go together")
		}
		if r.Timeout < 0 || r.Timeout > 5*time.Second {
			bad("store.redis.timeout", "must be between 0s and 5s")
		} else if r.Timeout >= c.Server.GRPC.StreamTimeout {
			bad("store.redis.timeout", "(%s) must be shorter than server.grpc.stream_timeout (%s), so a Check can answer before its stream ends", r.Timeout, c.Server.GRPC.StreamTimeout)
		}
	default:
		bad("store.kind", "must be memory or redis, got %q", c.Store.Kind)
	}
	if p := c.Response.HeadersPrefix; !validPrefix(p) {
		bad("response.headers_prefix", "%q must be a lower-case header name prefix such as x-warden-, not x-envoy-", p)
	}
	for i, s := range c.DecisionLog.Sinks {
		p := fmt.Sprintf("decision_log.sinks[%d]", i)
		switch s.Kind {
		case "stdout":
		case "file":
			if s.Path == "" {
				bad(p+".path", "is required for a file sink")
			}
		case "redis_stream":
			if c.Store.Kind != "redis" {
				bad(p+".kind", "redis_stream writes to the Redis of store.redis: needs store.kind: redis")
			}
			if s.Stream == "" {
				bad(p+".stream", "is required for a redis_stream sink")
			}
			if s.MaxLen < 0 {
				bad(p+".max_len", "must not be negative")
			}
		default:
			bad(p+".kind", "must be stdout, file or redis_stream, got %q", s.Kind)
		}
	}
	if sa := *c.DecisionLog.SampleAllow; sa < 0 || sa > 1 {
		bad("decision_log.sample_allow", "must be between 0 and 1, got %v", sa)
	}
	if r := *c.Tracing.SampleRatio; r < 0 || r > 1 {
		bad("tracing.sample_ratio", "must be between 0 and 1, got %v", r)
	}
	if e := c.Tracing.OTLPEndpoint; e != "" {
		if _, _, err := net.SplitHostPort(e); err != nil {
			bad("tracing.otlp_endpoint", "%q is not host:port", e)
		}
	}
	if c.DecisionLog.BufferSize < 1 {
		bad("decision_log.buffer_size", "must be positive")
	}
	if dl := c.DecisionLog; dl.MaxFieldBytes < 64 {
		bad("decision_log.max_field_bytes", "must be at least 64, got %d", dl.MaxFieldBytes)
	} else if dl.MaxRecordBytes < max(4096, 4*dl.MaxFieldBytes) {
		bad("decision_log.max_record_bytes", "must be at least 4096 and 4 × max_field_bytes (%d), got %d", 4*dl.MaxFieldBytes, dl.MaxRecordBytes)
	} else {
		if dl.BufferBytes < dl.MaxRecordBytes {
			bad("decision_log.buffer_bytes", "must be at least max_record_bytes (%d), got %d", dl.MaxRecordBytes, dl.BufferBytes)
		}
		if dl.MemoryBytes < dl.MaxRecordBytes {
			bad("decision_log.memory_bytes", "must be at least max_record_bytes (%d), got %d", dl.MaxRecordBytes, dl.MemoryBytes)
		}
	}
	if c.DecisionLog.MemoryRecords < 1 {
		bad("decision_log.memory_records", "must be positive")
	}
	errs = append(errs, c.validateAdmin()...)
	errs = append(errs, c.validateHTTPAuthz()...)
	return errs
}

func (c *Config) validateAdmin() fielderr.List {
	var errs fielderr.List
	bad := func(path, format string, args ...any) {
		errs = append(errs, fielderr.Errorf(path, format, args...))
	}
	a := c.Admin
	if a.Addr == "off" {
		return nil
	}
	if _, _, err := net.SplitHostPort(a.Addr); err != nil {
		bad("admin.addr", "%q is not host:port (or off)", a.Addr)
	}
	errs = append(errs, a.TLS.validate("admin.tls")...)
	if a.Enabled() && a.TLS.CertFile == "" && !Loopback(a.Addr) {
		bad("admin.addr", "%q is not a loopback address: the admin API needs admin.tls there (its bearer tokens must not cross a network in clear)", a.Addr)
	}
	if a.Console && a.TLS.CertFile == "" && !Loopback(a.Addr) {
		bad("admin.console", "admin.addr %q is not a loopback address: the console needs admin.tls there (its tokens must not cross a network in clear)", a.Addr)
	}
	if a.DevToken && !Loopback(a.Addr) {
		bad("admin.dev_token", "the dev token is for local use only: admin.addr %q is not a loopback address", a.Addr)
	}
	errs = append(errs, validateClients("admin", a.Clients, a.TLS.ClientCAFile, ValidAdminGrant, AdminMethods, "the methods this client may call", "an admin method")...)
	return errs
}

// validateClients checks the clients of the listener configured at
// section: they are identified by their certificates, so they need
// section.tls.client_ca_file; each needs an id and grants, every grant
// valid. names are the grants errors list; list and noun word them.
func validateClients(section string, clients []AdminClient, clientCA string, valid func(string) bool, names []string, list, noun string) fielderr.List {
	var errs fielderr.List
	bad := func(path, format string, args ...any) {
		errs = append(errs, fielderr.Errorf(path, format, args...))
	}
	if len(clients) > 0 && clientCA == "" {
		bad(section+".clients", "needs %s.tls.client_ca_file (clients are identified by their certificates)", section)
	}
	for i, cl := range clients {
		p := fmt.Sprintf("%s.clients[%d]", section, i)
		if cl.ID == "" {
			bad(p+".id", "is required (a URI SAN such as spiffe://..., or a subject CN)")
		}
		if len(cl.Allow) == 0 {
			bad(p+".allow", "is required: list %s (%s, or *)", list, strings.Join(names, ", "))
		}
		for j, g := range cl.Allow {
			if !valid(g) {
				bad(fmt.Sprintf("%s.allow[%d]", p, j), "%q is not %s (%s, or *)", g, noun, strings.Join(names, ", "))
			}
		}
	}
	return errs
}

func validPrefix(p string) bool {
	if p == "" || strings.HasPrefix(p, "x-envoy-") || strings.HasPrefix(p, ":") || p != strings.ToLower(p) {
		return false
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Loopback reports whether addr (host:port) is on a loopback address.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// PolicySource is where the policy directory is read from.
func (c *Config) PolicySource() policy.Source {
	src := c.policySource()
	src.SkipErrors = c.Policy.OnError == "skip"
	src.AllowUnrouted = c.Policy.Unrouted == "allow_policies"
	return src
}

func (c *Config) policySource() policy.Source {
	dir := c.Policy.Dir
	if !c.Embedded && filepath.IsAbs(dir) {
		return policy.Source{FS: os.DirFS(dir), Dir: ".", Name: dir}
	}
	// Relative to the config: its directory on disk, or the embedded FS.
	name := filepath.ToSlash(filepath.Clean(dir))
	display := filepath.Join(c.base, dir)
	if c.Embedded {
		display = c.base + "/" + name
	}
	return policy.Source{FS: c.fsys, Dir: name, Name: display}
}

// PolicyDir is the policy directory on disk ("" for the embedded config).
func (c *Config) PolicyDir() string {
	if c.Embedded {
		return ""
	}
	if filepath.IsAbs(c.Policy.Dir) {
		return c.Policy.Dir
	}
	return filepath.Join(c.base, c.Policy.Dir)
}

// Resolve makes a path from the config relative to the config's directory.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.Embedded {
		return p
	}
	return filepath.Join(c.base, p)
}

// RedisPassword reads the Redis password from its env var or file.
func (c *Config) RedisPassword() (string, error) {
	r := c.Store.Redis
	switch {
	case r.PasswordEnv != "":
		v, ok := os.LookupEnv(r.PasswordEnv)
		if !ok {
			return "", fmt.Errorf("store.redis.password_env: %s is not set", r.PasswordEnv)
		}
		return v, nil
	case r.PasswordFile != "":
		b, err := os.ReadFile(c.Resolve(r.PasswordFile))
		if err != nil {
			return "", fmt.Errorf("store.redis.password_file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", nil
}
