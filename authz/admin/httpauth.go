package admin

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// HTTPCaller is an authenticated caller of an HTTP API guarded like the
// admin API (the AuthZEN listener).
type HTTPCaller struct {
	Who    string   // "token:FILE:LINE" or the certificate's id; never a token
	Grants []string // what it may call ("*" for everything)
}

// May reports whether the caller holds grant.
func (c HTTPCaller) May(grant string) bool { return allowed(c.Grants, grant) }

// ErrUnknownToken is AuthenticateHTTP's error for a bearer token that is
// not in the token file (the caller may then try another authenticator).
var ErrUnknownToken = errors.New("unknown token")

// AuthenticateHTTP identifies an HTTP caller: a verified client
// certificate named in Clients, else a bearer token of TokenFile. status
// is the HTTP status of a failure (401 without or with unknown
// credentials, 403 for a certificate not granted, 503 when the token file
// cannot be read); err's text is safe to show the caller (it never holds a
// token) and is ErrUnknownToken for a bearer token not in the file.
func (g *Guard) AuthenticateHTTP(r *http.Request) (c HTTPCaller, status int, err error) {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		ids := certIDs(r.TLS.VerifiedChains[0][0])
		if cl, ok := g.client(ids); ok {
			return HTTPCaller{Who: cl.ID, Grants: cl.Allow}, 0, nil
		}
		if g.TokenFile == "" {
			return HTTPCaller{Who: ids[0]}, http.StatusForbidden, fmt.Errorf("client certificate %q is not in the clients list", ids[0])
		}
	}
	auth := r.Header.Values("Authorization")
	if len(auth) != 1 {
		return HTTPCaller{}, http.StatusUnauthorized, fmt.Errorf("send one Authorization: Bearer header, or a client certificate")
	}
	scheme, tok, ok := strings.Cut(auth[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || tok == "" {
		return HTTPCaller{}, http.StatusUnauthorized, fmt.Errorf("bearer token required")
	}
	if g.TokenFile == "" {
		return HTTPCaller{}, http.StatusUnauthorized, ErrUnknownToken
	}
	grants, status, err := g.grants()
	if err != nil {
		return HTTPCaller{}, status, err
	}
	found := lookup(grants, tok)
	if found < 0 {
		return HTTPCaller{}, http.StatusUnauthorized, ErrUnknownToken
	}
	return HTTPCaller{Who: g.tokenWho(grants[found]), Grants: grants[found].methods}, 0, nil
}

// tokenCache is a parsed token file and the stamp of the file it came from.
type tokenCache struct {
	stamp  fileStamp
	grants []grant
}

// fileStamp tells a file's versions apart: a rewrite, a rename over it
// (a new inode) or a truncation changes it.
type fileStamp struct {
	size         int64
	mtime, ctime int64
	ino, dev     uint64
}

// grants is the token file's grants: read again whenever the file's stamp
// changed (so a removed token stops working on the next call), else the
// cached parse.
func (g *Guard) grants() ([]grant, int, error) {
	fi, err := os.Stat(g.TokenFile)
	if err != nil {
		return nil, http.StatusServiceUnavailable, errors.New("token file unreadable")
	}
	stamp, ok := stampOf(fi)
	if c := g.cache.Load(); ok && c != nil && c.stamp == stamp {
		return c.grants, 0, nil
	}
	b, err := os.ReadFile(g.TokenFile)
	if err != nil {
		return nil, http.StatusServiceUnavailable, errors.New("token file unreadable")
	}
	grants, err := ParseTokenFile(g.TokenFile, b)
	if err != nil && len(grants) == 0 {
		return nil, http.StatusServiceUnavailable, errors.New("token file invalid")
	}
	// Cache only what was read under an unchanged stamp: a file changing
	// while read is read again next time.
	if fi2, err := os.Stat(g.TokenFile); err == nil && ok {
		if s2, ok2 := stampOf(fi2); ok2 && s2 == stamp {
			g.cache.Store(&tokenCache{stamp: stamp, grants: grants})
		}
	}
	return grants, 0, nil
}
