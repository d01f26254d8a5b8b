package identity

import (
	"net/url"
	"strings"
)

// WorkloadID is a SPIFFE workload identity.
type WorkloadID struct {
	ID             string // spiffe://trust-domain/path
	TrustDomain    string
	Namespace      string // from an Istio-style path /ns/NS/sa/SA, else ""
	ServiceAccount string
}

// ParseSPIFFE parses a SPIFFE ID. ok is false for anything else (a DNS SAN,
// an RFC 2253 subject, a malformed URI).
func ParseSPIFFE(s string) (WorkloadID, bool) {
	if len(s) > 2048 || !strings.HasPrefix(s, "spiffe://") {
		return WorkloadID{}, false
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "spiffe" || u.Host == "" || u.User != nil || u.Port() != "" ||
		u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || strings.Contains(u.Path, "//") ||
		strings.HasSuffix(u.Path, "/") || strings.ContainsAny(s, "%\\") || strings.ToLower(u.Host) != u.Host {
		return WorkloadID{}, false
	}
	for _, seg := range strings.Split(strings.TrimPrefix(u.Path, "/"), "/") {
		if seg == "." || seg == ".." {
			return WorkloadID{}, false
		}
	}
	w := WorkloadID{ID: s, TrustDomain: u.Host}
	if parts := strings.Split(u.Path, "/"); len(parts) == 5 && parts[1] == "ns" && parts[3] == "sa" {
		w.Namespace, w.ServiceAccount = parts[2], parts[4]
	}
	return w, true
}
