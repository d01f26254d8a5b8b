package admin

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/identity"
)

// MinTokenBytes is the shortest admin token accepted in a token file.
const MinTokenBytes = 16

// Guard authenticates admin callers and grants them methods: least
// privilege for the admin API too.
type Guard struct {
	// TokenFile is read on every call (tokens rotate without a restart).
	TokenFile string
	// Clients grants mTLS client identities (URI SAN, else subject CN).
	Clients []config.AdminClient
	Logger  *slog.Logger

	// cache holds the token file as last parsed for AuthenticateHTTP,
	// with the file's identity and change stamp.
	cache atomic.Pointer[tokenCache]
}

type grant struct {
	sum     [32]byte // SHA-256 of the token: compared in constant time
	methods []string
	line    int
}

// ParseTokenFile reads "TOKEN METHOD[,METHOD...]" lines; blank lines and
// lines starting with # are skipped. Errors name the file and line, never
// the token.
func ParseTokenFile(name string, b []byte) ([]grant, error) {
	var out []grant
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			errs = append(errs, fmt.Errorf("%s:%d: want \"TOKEN METHOD[,METHOD...]\" (methods: %s, or *)", name, n, strings.Join(config.AdminMethods, ", ")))
			continue
		}
		if len(f[0]) < MinTokenBytes {
			errs = append(errs, fmt.Errorf("%s:%d: token shorter than %d bytes", name, n, MinTokenBytes))
			continue
		}
		g := grant{sum: sha256.Sum256([]byte(f[0])), line: n}
		for _, m := range strings.Split(f[1], ",") {
			if !config.ValidAdminGrant(m) {
				errs = append(errs, fmt.Errorf("%s:%d: %q is not an admin method (%s, or *)", name, n, m, strings.Join(config.AdminMethods, ", ")))
				continue
			}
			g.methods = append(g.methods, m)
		}
		out = append(out, g)
	}
	if len(out) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%s: no tokens", name))
	}
	return out, errors.Join(errs...)
}

// Check validates the token file (at start-up; calls read it again).
func (g *Guard) Check() error {
	if g.TokenFile == "" {
		return nil
	}
	b, err := os.ReadFile(g.TokenFile)
	if err != nil {
		return fmt.Errorf("admin.token_file: %w", err)
	}
	_, err = ParseTokenFile(g.TokenFile, b)
	return err
}

// authorize returns the caller's name, or a gRPC error.
func (g *Guard) authorize(ctx context.Context, method string) (string, error) {
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
			ids := certIDs(ti.State.VerifiedChains[0][0])
			if c, ok := g.client(ids); ok {
				if allowed(c.Allow, method) {
					return c.ID, nil
				}
				return c.ID, status.Errorf(codes.PermissionDenied, "%s may not call %s", c.ID, method)
			}
			if g.TokenFile == "" {
				return ids[0], status.Errorf(codes.PermissionDenied, "client certificate %q is not in admin.clients", ids[0])
			}
		}
	}
	md, _ := metadata.FromIncomingContext(ctx)
	auth := md.Get("authorization")
	if len(auth) != 1 {
		return "", status.Error(codes.Unauthenticated, "admin API: send a bearer token from admin.token_file, or a client certificate")
	}
	scheme, tok, ok := strings.Cut(auth[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || g.TokenFile == "" {
		return "", status.Error(codes.Unauthenticated, "admin API: bearer token required")
	}
	b, err := os.ReadFile(g.TokenFile)
	if err != nil {
		return "", status.Error(codes.Unavailable, "admin API: token file unreadable")
	}
	grants, err := ParseTokenFile(g.TokenFile, b)
	if err != nil && len(grants) == 0 {
		return "", status.Error(codes.Unavailable, "admin API: token file invalid")
	}
	found := lookup(grants, tok)
	if found < 0 {
		return "", status.Error(codes.Unauthenticated, "admin API: unknown token")
	}
	who := g.tokenWho(grants[found])
	if !allowed(grants[found].methods, method) {
		return who, status.Errorf(codes.PermissionDenied, "this token may not call %s", method)
	}
	return who, nil
}

// certIDs are the names a verified client certificate goes by in
// Clients: its URI SANs (the last first), then its subject CN.
func certIDs(cert *x509.Certificate) []string {
	ids := []string{cert.Subject.CommonName}
	for _, u := range cert.URIs {
		ids = append([]string{u.String()}, ids...)
	}
	return ids
}

// client is the first of Clients whose ID is one of ids.
func (g *Guard) client(ids []string) (config.AdminClient, bool) {
	for _, c := range g.Clients {
		if slices.Contains(ids, c.ID) {
			return c, true
		}
	}
	return config.AdminClient{}, false
}

// lookup is the index of tok's entry in grants (the last, if listed
// twice), or -1: every entry is compared, in constant time.
func lookup(grants []grant, tok string) int {
	sum := sha256.Sum256([]byte(tok))
	found := -1
	for i := range grants { // no early exit: every entry is compared
		if subtle.ConstantTimeCompare(sum[:], grants[i].sum[:]) == 1 {
			found = i
		}
	}
	return found
}

// tokenWho names a token caller by its place in the token file
// ("token:FILE:LINE"), never by the token.
func (g *Guard) tokenWho(gr grant) string {
	return fmt.Sprintf("token:%s:%d", filepath.Base(g.TokenFile), gr.line)
}

func allowed(grants []string, method string) bool {
	g := GrantFor(method)
	return slices.Contains(grants, "*") || slices.Contains(grants, g)
}

// GrantFor is the grant (config.AdminMethods) a method needs: its own name,
// but Unrevoke needs Revoke, so that whoever may revoke may take it back.
func GrantFor(method string) string {
	if method == "Unrevoke" {
		return "Revoke"
	}
	return method
}

// UnaryInterceptor authenticates and authorizes every admin call and logs
// it (method, caller, outcome; never a token).
func (g *Guard) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	method := path.Base(info.FullMethod)
	who, err := g.authorize(ctx, method)
	var resp any
	if err == nil {
		resp, err = h(WithCaller(ctx, who), req)
	}
	if g.Logger != nil {
		g.Logger.Info("admin call", "method", method, "caller", who, "code", status.Code(err).String())
	}
	return resp, err
}

// DevTokenPath is where the quick start's admin token lives:
// $XDG_STATE_HOME/warden/admin-token (default ~/.local/state).
func DevTokenPath() (string, error) { return identity.StateFile("admin-token") }

// EnsureDevToken creates the dev token file (0600, "TOKEN *") unless it
// exists, and returns its path.
func EnsureDevToken() (string, error) {
	p, err := DevTokenPath()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err == nil {
		return p, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another process won
		return p, nil
	}
	if err != nil {
		return "", err
	}
	_, err = fmt.Fprintf(f, "# Warden quick start admin token (allowed every admin method)\n%s *\n", rand.Text()+rand.Text())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return p, err
}

// ReadToken returns the first token of a token file (the CLI's side).
func ReadToken(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		return strings.Fields(line)[0], nil
	}
	return "", fmt.Errorf("%s: no token", file)
}
