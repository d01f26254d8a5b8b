// Package checkreq builds the CheckRequest Envoy's ext_authz HTTP filter
// would send for an HTTP request, as ENVOY.md describes: pseudo-headers in
// the header map, repeated headers joined with ",", the raw path with its
// query, the connection manager's x-forwarded-*, x-request-id and
// x-envoy-external-address, and the body only when one is given.
package checkreq

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// HTTP describes a request as a client sends it to Envoy.
type HTTP struct {
	Method string
	URL    string // absolute: scheme://authority/path?query
	// Headers in "name: value" form, in order; repeats allowed.
	Headers []string
	Body    string
	// SourceIP is the TCP peer Envoy sees (default 127.0.0.1).
	SourceIP string
	// PeerPrincipal is the peer certificate's SPIFFE ID (mTLS), if any.
	PeerPrincipal     string
	ContextExtensions map[string]string
	Protocol          string    // default HTTP/1.1
	Time              time.Time // default now
}

// Build returns the CheckRequest.
func Build(h HTTP) (*authv3.CheckRequest, error) {
	u, err := url.Parse(h.URL)
	if err != nil {
		return nil, fmt.Errorf("--url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("--url: %q must be an absolute http(s) URL", h.URL)
	}
	method := strings.ToUpper(h.Method)
	if method == "" {
		method = "GET"
	}
	src := h.SourceIP
	if src == "" {
		src = "127.0.0.1"
	}
	if net.ParseIP(src) == nil {
		return nil, fmt.Errorf("--source-ip: %q is not an IP address", src)
	}
	proto := h.Protocol
	if proto == "" {
		proto = "HTTP/1.1"
	}
	now := h.Time
	if now.IsZero() {
		now = time.Now()
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if u.RawQuery != "" || u.ForceQuery {
		path += "?" + u.RawQuery
	}
	headers := map[string]string{}
	add := func(k, v string) {
		if prev, ok := headers[k]; ok {
			headers[k] = prev + "," + v
			return
		}
		headers[k] = v
	}
	for _, kv := range h.Headers {
		k, v, ok := strings.Cut(kv, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("--header %q: want 'name: value'", kv)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if k == "host" {
			k = ":authority" // Envoy never forwards a host key
		}
		if strings.HasPrefix(k, ":") {
			headers[k] = strings.TrimSpace(v)
			continue
		}
		add(k, strings.TrimSpace(v))
	}
	authority := u.Host
	if a, ok := headers[":authority"]; ok {
		authority = a
	}
	headers[":authority"] = authority
	headers[":method"] = method
	headers[":path"] = path
	headers[":scheme"] = u.Scheme
	// What the connection manager adds at the edge (use_remote_address).
	if xff, ok := headers["x-forwarded-for"]; ok {
		headers["x-forwarded-for"] = xff + "," + src
	} else {
		headers["x-forwarded-for"] = src
	}
	headers["x-forwarded-proto"] = u.Scheme
	headers["x-envoy-external-address"] = src
	if _, ok := headers["x-request-id"]; !ok {
		headers["x-request-id"] = uuid()
	}
	httpReq := &authv3.AttributeContext_HttpRequest{
		Id:       streamID(),
		Method:   method,
		Headers:  headers,
		Path:     path,
		Host:     authority,
		Scheme:   u.Scheme,
		Protocol: proto,
	}
	if h.Body != "" {
		headers["content-length"] = strconv.Itoa(len(h.Body))
		headers["x-envoy-auth-partial-body"] = "false"
		httpReq.Body = h.Body
		httpReq.Size = int64(len(h.Body))
	}
	port := 443
	if u.Scheme == "http" {
		port = 80
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{
			Address:   sockAddr(src, 50000),
			Principal: h.PeerPrincipal,
		},
		Destination: &authv3.AttributeContext_Peer{Address: sockAddr("127.0.0.1", uint32(port))},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.New(now),
			Http: httpReq,
		},
		ContextExtensions: h.ContextExtensions,
		MetadataContext:   &corev3.Metadata{},
	}}, nil
}

func sockAddr(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b[:])
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

func streamID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatUint(binary.BigEndian.Uint64(b[:]), 10)
}
