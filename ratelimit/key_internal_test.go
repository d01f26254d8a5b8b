package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"
)

// keyOld is key as it was before it was built in one allocation (issue
// 18): FuzzKey holds key to it, since a bucket key is stored (Redis) and
// must not change.
func keyOld(rule *Rule, r *Request) string {
	var b strings.Builder
	b.WriteString(rule.Name)
	for _, k := range rule.Key {
		var v string
		switch name, arg, _ := strings.Cut(k, ":"); name {
		case "principal":
			v = r.PrincipalType + "::" + r.Principal
		case "client_id":
			v = r.ClientID
		case "source_ip":
			v = r.SourceIP
		case "service":
			v = r.Service
		case "route":
			v = r.Route
		case "action":
			v = r.Action
		case "header":
			if r.Header != nil {
				v = r.Header(arg)
			}
		case "claim":
			if r.Claim != nil {
				v = r.Claim(arg)
			}
		}
		if len(v) > 64 { // a long value is held by its digest
			sum := sha256.Sum256([]byte(v))
			b.WriteString("|#" + hex.EncodeToString(sum[:]))
			continue
		}
		b.WriteByte('|')
		b.WriteString(strconv.Itoa(len(v)))
		b.WriteByte(':')
		b.WriteString(v)
	}
	return b.String()
}

var keyNames = []string{"principal", "client_id", "source_ip", "service", "route", "action", "header:x-tenant", "claim:tenant", "header:", "unknown"}

// FuzzKey: key is keyOld for any rule name, key list (more than key's 8
// kept on the stack too) and request.
func FuzzKey(f *testing.F) {
	f.Add("per-user", []byte{0, 1, 2}, "User", "corp|alice", "client", "10.0.0.1", "orders", "GET /orders/{id}", "t1")
	f.Add("", []byte{0, 0, 6, 7, 8, 9, 5, 4, 3, 2, 1, 0, 6}, "", "", "", "", "", "", "")
	f.Add("r|1:x", []byte{7, 6}, "Workload", "spiffe://x/\xff", strings.Repeat("c", 1234), "::1", "", "", "a|3:b")
	f.Fuzz(func(t *testing.T, name string, keys []byte, ptype, principal, client, ip, service, action, value string) {
		if len(keys) > 40 {
			keys = keys[:40]
		}
		rule := &Rule{Name: name}
		for _, k := range keys {
			rule.Key = append(rule.Key, keyNames[int(k)%len(keyNames)])
		}
		r := &Request{PrincipalType: ptype, Principal: principal, ClientID: client, SourceIP: ip, Service: service,
			Route: service + "/r", Action: action,
			Header: func(n string) string { return n + value },
			Claim:  func(n string) string { return value + n }}
		if len(keys)%2 == 1 {
			r.Header, r.Claim = nil, nil
		}
		if got, want := key(rule, r), keyOld(rule, r); got != want {
			t.Fatalf("key %q, want %q", got, want)
		}
	})
}

// BenchmarkAllowMemory: one rule keyed on the principal and a header, in
// the memory store.
func BenchmarkAllowMemory(b *testing.B) {
	rules := []Rule{{Name: "per-user", Key: []string{"principal", "header:x-tenant"}, Limit: 1e9, Per: time.Minute, Burst: 1e9}}
	l := NewLimiter(rules, NewMemory(), nil)
	r := &Request{PrincipalType: "User", Principal: "corp|alice", Header: func(string) string { return "t1" }}
	b.ReportAllocs()
	for b.Loop() {
		if d, err := l.Allow(context.Background(), r); err != nil || !d.Allowed {
			b.Fatal(d, err)
		}
	}
}

// TestKeyOfLongValueIsBounded: a bucket key holds a long value (a 90 KiB
// header) by its digest: the key is as short whatever the caller sends,
// distinct values still get distinct buckets, and the same value the
// same one. (A flood of 95 KB header values filled Redis at 300 MB in 3 s.)
func TestKeyOfLongValueIsBounded(t *testing.T) {
	rule := &Rule{Name: "per-tenant", Key: []string{"header:x-tenant", "principal"}}
	req := func(v string) *Request {
		return &Request{PrincipalType: "User", Principal: "corp|alice", Header: func(string) string { return v }}
	}
	a, b := strings.Repeat("a", 90<<10), strings.Repeat("a", 90<<10-1)+"b"
	ka, kb := key(rule, req(a)), key(rule, req(b))
	if len(ka) > len(rule.Name)+2+64+20 || len(kb) != len(ka) {
		t.Errorf("keys of 90 KiB values are %d and %d bytes", len(ka), len(kb))
	}
	if ka == kb || ka != key(rule, req(a)) {
		t.Error("distinct long values share a bucket, or one value gets two")
	}
	if short := key(rule, req("tenant-1")); short != "per-tenant|8:tenant-1|16:User::corp|alice" {
		t.Errorf("short values changed: %q", short)
	}
}
